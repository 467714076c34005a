//! User and group names from the host's `/etc/passwd` and `/etc/group`.

use std::collections::HashMap;

use lanner_contract::model::Text;

/// uid → name and gid → name, shared texts (every event of a user gets the same one).
#[derive(Debug, Default)]
pub struct Names {
    users: HashMap<u32, Text>,
    groups: HashMap<u32, Text>,
}

fn parse(text: &str) -> HashMap<u32, Text> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((id, Text::from(name)))
        })
        .collect()
}

impl Names {
    /// Reads the host's files (missing files give empty tables).
    pub fn load() -> Names {
        Names {
            users: parse(&std::fs::read_to_string("/etc/passwd").unwrap_or_default()),
            groups: parse(&std::fs::read_to_string("/etc/group").unwrap_or_default()),
        }
    }

    /// Name of `uid`, or the number as text (Falco prints the number when unknown).
    pub fn user(&self, uid: u32) -> Text {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string().into())
    }

    /// Name of `gid`, or the number as text.
    pub fn group(&self, gid: u32) -> Text {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string().into())
    }

    /// Name of the login uid: `<NA>`-like `None` when unset (-1).
    pub fn login(&self, loginuid: i64) -> Option<Text> {
        (loginuid >= 0).then(|| self.user(loginuid as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let m = parse(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n",
        );
        assert_eq!(m.get(&0).map(|s| &**s), Some("root"));
        assert_eq!(m.get(&33).map(|s| &**s), Some("www-data"));
        assert_eq!(m.len(), 2);
    }
}
