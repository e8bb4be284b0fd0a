//! Labs: network namespaces joined by veth pairs, for tests, benchmarks and the demo.
