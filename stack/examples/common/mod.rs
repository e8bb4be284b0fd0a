//! What the examples share: their command line (`--interface`, `--address`,
//! `--netns`, ...) and opening a surge stack on that interface.
#![allow(dead_code)] // each example uses a different part

use std::collections::HashMap;
use std::time::Duration;

use surge_stack::iface::Ipv4Cidr;
use surge_stack::runtime::xdp::{XdpConfig, XdpStack};
use surge_stack::runtime::{Handler, RuntimeConfig};

/// `--key value` pairs from the command line; `usage` is printed on a mistake.
pub struct Args {
    values: HashMap<String, String>,
    usage: &'static str,
}

impl Args {
    pub fn parse(usage: &'static str) -> Args {
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(key) = it.next() {
            let Some(name) = key.strip_prefix("--") else {
                fail(usage, &format!("unexpected argument '{key}'"));
            };
            let Some(value) = it.next() else {
                fail(usage, &format!("--{name} needs a value"));
            };
            values.insert(name.to_owned(), value);
        }
        Args { values, usage }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| fail(self.usage, &format!("--{name} is required")))
    }

    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail(self.usage, &format!("--{name}: cannot parse '{v}'"))),
        }
    }

    /// The `--seconds` limit every example has (a bound on its run time).
    pub fn deadline(&self) -> std::time::Instant {
        std::time::Instant::now() + Duration::from_secs(self.parsed("seconds", 60u64))
    }
}

pub fn fail(usage: &str, message: &str) -> ! {
    eprintln!("error: {message}\n\n{usage}");
    std::process::exit(2)
}

/// Opens surge on `--interface` (inside `--netns` if given) with `--address`,
/// steering `tcp_ports`/`udp_ports` to it, and starts its loops.
pub fn open_stack(
    args: &Args,
    tcp_ports: Vec<u16>,
    udp_ports: Vec<u16>,
    handler: Option<&dyn Fn(usize) -> Box<dyn Handler<surge_datapath::XdpPort>>>,
) -> XdpStack {
    let address: Ipv4Cidr = args.parsed("address", "198.18.0.10/24".parse().expect("cidr"));
    let mut config = XdpConfig::new(args.required("interface"), address);
    config.gateway = args.get("gateway").map(|g| {
        g.parse()
            .unwrap_or_else(|_| fail(args.usage, "--gateway: not an IPv4 address"))
    });
    config.queues = args.get("queues").map(|_| args.parsed("queues", 1u32));
    config.tcp_ports = tcp_ports;
    config.udp_ports = udp_ports;
    let _netns = args.get("netns").map(|ns| {
        surge_lab::enter_netns(ns).unwrap_or_else(|e| {
            eprintln!("error: entering network namespace {ns}: {e}");
            std::process::exit(1)
        })
    });
    let started = match handler {
        None => XdpStack::start(&config, RuntimeConfig::default()),
        Some(h) => XdpStack::start_with(&config, RuntimeConfig::default(), h),
    };
    started.unwrap_or_else(|e| {
        eprintln!("error: starting surge on {}: {e}", config.interface);
        std::process::exit(1)
    })
}
