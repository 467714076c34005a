//! DNS correlation: each container's recent DNS answers (address → queried name), so a
//! later connect to one of those addresses gets `fd.sip.name`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use lanner_contract::Event;
use lanner_contract::model::Text;

/// Addresses remembered per container; the oldest go first.
const PER_CONTAINER: usize = 4096;
/// Containers remembered; beyond it the memory starts over.
const CONTAINERS: usize = 16_384;

#[derive(Debug, Default)]
struct Recent {
    names: HashMap<IpAddr, Text>,
    order: VecDeque<IpAddr>,
}

/// Recent DNS answers by container id (`host` included).
#[derive(Debug, Default)]
pub struct DnsMemory {
    by_container: HashMap<Text, Recent>,
}

impl DnsMemory {
    /// Learns from a DNS event (one with `dns.name` and `dns.answers`) and names a
    /// connect-like event (one with `fd.sip` and no `fd.sip.name`). Returns whether it named it.
    pub fn observe(&mut self, ev: &mut Event) -> bool {
        let Some(cid) = ev.container_id.clone() else {
            return false;
        };
        if let (Some(name), Some(answers)) = (&ev.dns_name, &ev.dns_answers) {
            self.remember(&cid, name, answers);
        }
        if ev.fd_sip_name.is_none()
            && let Some(ip) = ev.fd_sip
            && let Some(name) = self.by_container.get(&cid).and_then(|r| r.names.get(&ip))
        {
            ev.fd_sip_name = Some(name.clone());
            return true;
        }
        false
    }

    fn remember(&mut self, cid: &Text, name: &Text, answers: &[Text]) {
        if !self.by_container.contains_key(cid) && self.by_container.len() >= CONTAINERS {
            self.by_container.clear();
        }
        let recent = self.by_container.entry(cid.clone()).or_default();
        for a in answers {
            let Ok(ip) = a.trim().parse::<IpAddr>() else {
                continue; // CNAMEs and other non-address answers
            };
            if recent.names.insert(ip, name.clone()).is_none() {
                recent.order.push_back(ip);
                if recent.order.len() > PER_CONTAINER
                    && let Some(old) = recent.order.pop_front()
                {
                    recent.names.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(cid: &str) -> Event {
        Event {
            container_id: Some(cid.into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_later_connects_of_the_same_container_only() {
        let mut m = DnsMemory::default();
        let mut dns = ev("abcdefabcdef");
        dns.dns_name = Some("example.org".into());
        dns.dns_answers = Some(vec!["example.net.".into(), "93.184.216.34".into()].into());
        assert!(!m.observe(&mut dns));

        let ip: IpAddr = "93.184.216.34".parse().expect("ip");
        let mut conn = ev("abcdefabcdef");
        conn.evt_type = Some("connect".into());
        conn.fd_sip = Some(ip);
        assert!(m.observe(&mut conn));
        assert_eq!(conn.fd_sip_name.as_deref(), Some("example.org"));

        let mut other = ev("000000000000");
        other.fd_sip = Some(ip);
        assert!(!m.observe(&mut other));
        assert_eq!(other.fd_sip_name, None);

        let mut unknown = ev("abcdefabcdef");
        unknown.fd_sip = Some("10.0.0.1".parse().expect("ip"));
        assert!(!m.observe(&mut unknown));
    }
}
