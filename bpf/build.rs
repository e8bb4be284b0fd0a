//! Compiles `src/bpf/steer.bpf.c` and generates its libbpf-rs skeleton into OUT_DIR.

use std::{env, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const SOURCE: &str = "src/bpf/steer.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("steer.skel.rs");
    SkeletonBuilder::new()
        .source(SOURCE)
        // Debian keeps <asm/types.h> under the multiarch include directory.
        .clang_args(["-I/usr/include/x86_64-linux-gnu", "-Wall", "-O2"])
        .build_and_generate(&out)
        .expect("building the XDP program (needs clang and libbpf-dev)");
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=src/bpf/steer.h");
}
