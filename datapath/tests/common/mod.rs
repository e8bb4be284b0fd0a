//! Shared pieces of the root tests: a tiny ARP/ICMP responder on the datapath.
#![allow(dead_code)]

pub mod responder;
