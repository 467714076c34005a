//! Matching primitives behind the operators: globs, path prefixes, IP networks, hex
//! byte strings, and equality of short texts.

use std::net::IpAddr;

/// Whether two texts are equal. Texts up to 16 bytes (event types, process names, most
/// constants of the rules) are compared as two overlapping machine words each, without
/// a call to `memcmp`.
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if n > 16 {
        return a == b;
    }
    if n >= 8 {
        return a.first_chunk::<8>() == b.first_chunk::<8>()
            && a.last_chunk::<8>() == b.last_chunk::<8>();
    }
    if n >= 4 {
        return a.first_chunk::<4>() == b.first_chunk::<4>()
            && a.last_chunk::<4>() == b.last_chunk::<4>();
    }
    // 0 to 3 bytes: the first, middle and last byte are all of them.
    n == 0 || (a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last())
}

/// A compiled glob: `*` any run of characters (including `/`), `?` one character,
/// `[abc]`, `[a-z]`, `[!x]`/`[^x]` classes; `\` escapes the next character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    toks: Vec<GlobTok>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum GlobTok {
    Char(char),
    Any,
    Star,
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Compiles a pattern; `fold` lowercases it (for `iglob`).
    pub fn new(pattern: &str, fold: bool) -> Glob {
        let pattern = if fold {
            pattern.to_lowercase()
        } else {
            pattern.to_owned()
        };
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if toks.last() != Some(&GlobTok::Star) {
                        toks.push(GlobTok::Star);
                    }
                }
                '?' => toks.push(GlobTok::Any),
                '\\' if i + 1 < chars.len() => {
                    i += 1;
                    toks.push(GlobTok::Char(chars[i]));
                }
                '[' => {
                    let mut j = i + 1;
                    let negate = matches!(chars.get(j), Some('!') | Some('^'));
                    if negate {
                        j += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    while j < chars.len() && (chars[j] != ']' || first) {
                        first = false;
                        let lo = chars[j];
                        if chars.get(j + 1) == Some(&'-')
                            && chars.get(j + 2).is_some_and(|c| *c != ']')
                        {
                            ranges.push((lo, chars[j + 2]));
                            j += 3;
                        } else {
                            ranges.push((lo, lo));
                            j += 1;
                        }
                    }
                    if j < chars.len() {
                        toks.push(GlobTok::Class { negate, ranges });
                        i = j;
                    } else {
                        toks.push(GlobTok::Char('['));
                    }
                }
                c => toks.push(GlobTok::Char(c)),
            }
            i += 1;
        }
        Glob { toks }
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let (mut t, mut c) = (0usize, 0usize);
        let mut back: Option<(usize, usize)> = None;
        loop {
            if t < self.toks.len() {
                match &self.toks[t] {
                    GlobTok::Star => {
                        back = Some((t, c));
                        t += 1;
                        continue;
                    }
                    tok if c < chars.len() && tok_matches(tok, chars[c]) => {
                        t += 1;
                        c += 1;
                        continue;
                    }
                    _ => {}
                }
            } else if c == chars.len() {
                return true;
            }
            match back {
                Some((bt, bc)) if bc < chars.len() => {
                    back = Some((bt, bc + 1));
                    t = bt + 1;
                    c = bc + 1;
                }
                _ => return false,
            }
        }
    }
}

fn tok_matches(tok: &GlobTok, ch: char) -> bool {
    match tok {
        GlobTok::Char(x) => *x == ch,
        GlobTok::Any => true,
        GlobTok::Star => true,
        GlobTok::Class { negate, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= ch && ch <= *hi) != *negate
        }
    }
}

/// `pmatch`: `value` is one of the prefixes or lies below one (component-wise).
pub fn path_prefix_match(prefixes: &[Box<str>], value: &str) -> bool {
    prefixes.iter().any(|p| {
        let p = if p.len() > 1 {
            p.trim_end_matches('/')
        } else {
            p
        };
        if p == "/" {
            return value.starts_with('/');
        }
        value
            .strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a single address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses `a.b.c.d`, `a.b.c.d/n` or IPv6 forms.
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|n| *n <= max)?,
            None => max,
        };
        Some(Net { addr, prefix })
    }

    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix as u32)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix as u32)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Decodes hex text (`cafebabe`) into bytes.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// ASCII case-insensitive substring search.
pub fn icontains(hay: &str, needle_lower: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len())
        .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `same_text` is `==`, at every length around its word sizes.
        #[test]
        fn same_text_is_equality(a in "[ab]{0,20}", b in "[ab]{0,20}", copy in proptest::bool::ANY) {
            let b = if copy { a.clone() } else { b };
            proptest::prop_assert_eq!(same_text(&a, &b), a == b);
        }
    }

    #[test]
    fn globs() {
        let g = Glob::new("/home/*/.ssh/*", false);
        assert!(g.matches("/home/bob/.ssh/id_rsa"));
        assert!(
            g.matches("/home/bob/x/.ssh/id_rsa"),
            "* crosses '/' as in fnmatch without FNM_PATHNAME"
        );
        assert!(!g.matches("/root/.ssh/id_rsa"));
        assert!(Glob::new("*../*../*", false).matches("a/../b/../c"));
        assert!(!Glob::new("*../*../*", false).matches("a/../b"));
        assert!(Glob::new("file?.[ch]", false).matches("file1.c"));
        assert!(!Glob::new("file?.[!ch]", false).matches("file1.c"));
        assert!(Glob::new("[a-c]x", false).matches("bx"));
        assert!(Glob::new("ABC*", true).matches("abcdef"));
        assert!(Glob::new("", false).matches(""));
        assert!(!Glob::new("a", false).matches(""));
        assert!(Glob::new("a\\*", false).matches("a*"));
        assert!(!Glob::new("a\\*", false).matches("ab"));
    }

    #[test]
    fn path_prefixes() {
        let p: Vec<Box<str>> = vec!["/usr/bin".into(), "/etc/".into()];
        assert!(path_prefix_match(&p, "/usr/bin"));
        assert!(path_prefix_match(&p, "/usr/bin/ls"));
        assert!(path_prefix_match(&p, "/etc/passwd"));
        assert!(!path_prefix_match(&p, "/usr/binx"));
        assert!(!path_prefix_match(&p, "/usr"));
    }

    #[test]
    fn networks() {
        let n = Net::parse("10.0.0.0/8").expect("net");
        assert!(n.contains("10.1.2.3".parse().expect("ip")));
        assert!(!n.contains("11.1.2.3".parse().expect("ip")));
        assert!(n.contains("::ffff:10.0.0.1".parse().expect("ip")));
        assert!(
            Net::parse("1.2.3.4")
                .expect("ip")
                .contains("1.2.3.4".parse().expect("ip"))
        );
        assert!(
            Net::parse("fd00::/8")
                .expect("v6")
                .contains("fd12::1".parse().expect("ip"))
        );
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(Net::parse("nope").is_none());
    }

    #[test]
    fn hex_and_case() {
        assert_eq!(decode_hex("cafebabe"), Some(vec![0xca, 0xfe, 0xba, 0xbe]));
        assert_eq!(decode_hex("abc"), None);
        assert!(icontains("Hello World", "world"));
        assert!(!icontains("Hello", "world"));
    }
}
