//! A small YAML tree that remembers where every node starts, so rule-file errors can
//! name the file, line and column.
//!
//! Built on `libyaml-safer` (a safe port of libyaml, the parser Falco's yaml-cpp
//! agrees with on the upstream files). Anchors and aliases are resolved (an alias is
//! replaced by a copy of the anchored node); tags are ignored.

use std::collections::HashMap;

use libyaml_safer::{EventData, Mark, Parser, ScalarStyle};

/// A position in a file: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A YAML node with the position where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub kind: NodeKind,
}

/// The content of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is true for unquoted scalars (which may mean null/bool/number).
    Scalar {
        /// The text.
        text: String,
        /// Unquoted (plain style).
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar (`None` for sequences and maps).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this is a null scalar (`~`, `null` or empty, unquoted).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }

    /// A boolean scalar (`true`/`false`, any case).
    pub fn as_bool(&self) -> Option<bool> {
        match self.as_str()?.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(v) => Some(v),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(v) => Some(v),
            _ => None,
        }
    }

    /// Looks a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a sequence",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

fn pos_of(m: Mark) -> Pos {
    Pos {
        line: m.line as usize + 1,
        col: m.column as usize + 1,
    }
}

enum Frame {
    Seq(Pos, Option<String>, Vec<Node>),
    Map(Pos, Option<String>, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<String, Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn push_node(&mut self, node: Node, anchor: Option<String>) {
        if let Some(a) = anchor {
            self.anchors.insert(a, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl Builder {
    fn on_event(&mut self, ev: EventData, mark: Mark) {
        let pos = pos_of(mark);
        match ev {
            EventData::Scalar {
                anchor,
                value,
                style,
                ..
            } => {
                let plain = style == ScalarStyle::Plain;
                self.push_node(
                    Node {
                        pos,
                        kind: NodeKind::Scalar { text: value, plain },
                    },
                    anchor,
                );
            }
            EventData::SequenceStart { anchor, .. } => {
                self.stack.push(Frame::Seq(pos, anchor, Vec::new()))
            }
            EventData::MappingStart { anchor, .. } => {
                self.stack.push(Frame::Map(pos, anchor, Vec::new(), None))
            }
            EventData::SequenceEnd | EventData::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(p, anchor, items)) => self.push_node(
                    Node {
                        pos: p,
                        kind: NodeKind::Seq(items),
                    },
                    anchor,
                ),
                Some(Frame::Map(p, anchor, entries, _)) => self.push_node(
                    Node {
                        pos: p,
                        kind: NodeKind::Map(entries),
                    },
                    anchor,
                ),
                None => {}
            },
            EventData::Alias { anchor } => match self.anchors.get(&anchor).cloned() {
                Some(mut node) => {
                    node.pos = pos;
                    self.push_node(node, None);
                }
                None => {
                    if self.error.is_none() {
                        self.error = Some(YamlError {
                            pos,
                            message: format!("unknown alias '{anchor}'"),
                        });
                    }
                }
            },
            _ => {}
        }
    }
}

/// Parses a YAML text into its documents.
pub fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new();
    parser.set_input(text.as_bytes());
    for ev in parser {
        let ev = ev.map_err(|e| YamlError {
            pos: e.problem_mark().map(pos_of).unwrap_or_default(),
            message: e.problem().to_owned(),
        })?;
        builder.on_event(ev.data, ev.start_mark);
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let docs =
            parse("- rule: a\n  condition: x\n- list: l\n  items: [a, 'b']\n").expect("valid");
        let seq = docs[0].as_seq().expect("seq");
        assert_eq!(seq[0].pos, Pos { line: 1, col: 3 });
        let items = seq[1].get("items").expect("items");
        assert_eq!(items.pos.line, 4);
        let b = &items.as_seq().expect("seq")[1];
        assert_eq!(
            b.kind,
            NodeKind::Scalar {
                text: "b".into(),
                plain: false
            }
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("- rule: a\n  condition: [x\n").expect_err("invalid");
        assert!(e.pos.line >= 2, "{e}");
    }
}
