//! A hosts file per lab namespace, so programs run with `ip netns exec` (which bind-mounts
//! `/etc/netns/<namespace>/hosts` over `/etc/hosts`) can name the lab's hosts: `a.lab`,
//! `b.lab` and, in a routed lab, `router.lab` (the router's address on the host's own link).
//! Written when the lab is built, removed with its namespaces.

use std::path::PathBuf;

use crate::LabError;
use crate::layout::Layout;

/// Where `ip netns exec` looks for a namespace's own `/etc` files.
const NETNS_ETC_DIR: &str = "/etc/netns";

/// The directory of the namespace's own `/etc` files.
fn etc_dir(netns: &str) -> PathBuf {
    PathBuf::from(NETNS_ETC_DIR).join(netns)
}

/// The text of the hosts file for the namespace `netns` of the lab.
pub(crate) fn hosts_text(layout: &Layout, netns: &str) -> String {
    let mut text = format!(
        "# written by surge-lab for {netns}; removed with the lab\n127.0.0.1\tlocalhost\n{}\ta.lab\n{}\tb.lab\n",
        layout.a.addr, layout.b.addr
    );
    // The router's interface on the same link as this host (towards A in the router's own).
    let router = if layout.b.netns == netns {
        layout.router_b.as_ref()
    } else {
        layout.router_a.as_ref()
    };
    if let Some(r) = router {
        text.push_str(&format!("{}\trouter.lab\n", r.addr));
    }
    text
}

/// Writes `/etc/netns/<namespace>/hosts` for each of the lab's namespaces.
pub(crate) fn write_hosts_files(layout: &Layout, namespaces: &[String]) -> Result<(), LabError> {
    for netns in namespaces {
        let dir = etc_dir(netns);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join("hosts");
        std::fs::write(&path, hosts_text(layout, netns))
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    }
    Ok(())
}

/// Removes the namespace's hosts file and its directory (if nothing else is in it);
/// nothing there is not an error.
pub(crate) fn remove_hosts_file(netns: &str) -> Result<(), LabError> {
    let dir = etc_dir(netns);
    let path = dir.join("hosts");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LabError::io(format!("removing {}", path.display()), e)),
    }
    // Another tool's files in the directory keep it.
    let _ = std::fs::remove_dir(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Topology;
    use crate::layout::layout;

    #[test]
    fn each_namespace_names_the_hosts_and_its_own_router_side() {
        let pair = layout("hosts", Topology::Pair).expect("layout");
        let text = hosts_text(&pair, &pair.a.netns);
        assert!(text.contains("198.18.0.1\ta.lab\n"), "{text}");
        assert!(text.contains("198.18.0.2\tb.lab\n"), "{text}");
        assert!(!text.contains("router.lab"), "{text}");
        let routed = layout("hosts", Topology::Routed).expect("layout");
        let in_a = hosts_text(&routed, &routed.a.netns);
        let in_b = hosts_text(&routed, &routed.b.netns);
        assert!(in_a.contains("198.18.1.254\trouter.lab\n"), "{in_a}");
        assert!(in_b.contains("198.18.2.254\trouter.lab\n"), "{in_b}");
        assert!(in_b.contains("198.18.2.1\tb.lab\n"), "{in_b}");
    }
}
