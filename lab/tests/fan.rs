//! Root test: a fan lab builds, every client host reaches the server through the router
//! from its own address, and dropping the lab (or `down_by_name`) removes every namespace.

use std::process::Output;

use surge_lab::{FanLab, LabSpec, Topology, client_netns_name, down_by_name, netns_exists};

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_client_reaches_the_server_and_the_lab_goes_away() {
    let name = LabSpec::unique("fan", Topology::Routed).name;
    let lab = FanLab::up(&name, 3).expect("fan lab up");
    assert_eq!(lab.clients().len(), 3);
    let server = lab.server().addr.to_string();
    assert_eq!(server, "198.18.2.1");
    for (i, client) in lab.clients().iter().enumerate() {
        assert_eq!(client.netns, client_netns_name(&name, i));
        assert_eq!(client.addr.octets(), [198, 18, 16 + i as u8, 1]);
        let ping = FanLab::command_in(&client.netns, "ping")
            .args(["-c", "1", "-W", "2", &server])
            .output()
            .expect("ping");
        assert!(ping.status.success(), "client {i}: {}", text(&ping));
        // The server sees the client's own address (routed, no NAT).
        let back = FanLab::command_in(&lab.server().netns, "ping")
            .args(["-c", "1", "-W", "2", &client.addr.to_string()])
            .output()
            .expect("ping back");
        assert!(
            back.status.success(),
            "server -> client {i}: {}",
            text(&back)
        );
    }
    let namespaces: Vec<String> = lab.clients().iter().map(|c| c.netns.clone()).collect();
    drop(lab);
    for ns in &namespaces {
        assert!(!netns_exists(ns), "{ns} left behind");
    }
    assert!(!netns_exists(&format!("surge-{name}-r")));

    // down_by_name removes a fan lab too (what the signal handler and `surge lab down` call).
    let name = LabSpec::unique("fan", Topology::Routed).name;
    let lab = FanLab::up(&name, 2).expect("second fan lab");
    let clients: Vec<String> = lab.clients().iter().map(|c| c.netns.clone()).collect();
    assert!(down_by_name(&name).expect("down by name"));
    for ns in &clients {
        assert!(!netns_exists(ns), "{ns} left behind by down_by_name");
    }
    drop(lab);
    assert!(FanLab::up(&name, 0).is_err(), "zero clients refused");
}
