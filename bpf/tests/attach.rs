//! Attaching and removing the steering program on a lab veth (root; fails
//! loudly without it): native mode with generic fallback, detach on drop,
//! removal of a program left behind by a process that died without `Drop`
//! (what `surge xdp detach` does), and refusal to remove a foreign program.

use surge_bpf::{
    AttachMode, AttachedMode, BpfError, SteerConfig, SteerProgram, attached_program, detach_program,
};
use surge_lab::{HostId, Lab, LabSpec, Topology, enter_netns};

fn lab(prefix: &str) -> Lab {
    Lab::up(&LabSpec::unique(prefix, Topology::Pair))
        .expect("building the lab (root tests need root)")
}

#[test]
fn attach_in_each_mode_and_detach_on_drop() {
    let lab = lab("bpf-modes");
    let a = lab.a().clone();
    let _ns = enter_netns(&a.netns).expect("entering ns A");
    for (mode, expected, shown) in [
        (AttachMode::Native, AttachedMode::Native, "native"),
        (AttachMode::Generic, AttachedMode::Generic, "generic"),
        (AttachMode::Auto, AttachedMode::Native, "native"),
    ] {
        let program =
            SteerProgram::attach(&a.ifname, &SteerConfig::default(), mode).expect("attach");
        assert_eq!(program.mode(), Some(expected));
        assert_eq!(program.ifname(), Some(a.ifname.as_str()));
        let found = attached_program(&a.ifname)
            .expect("query")
            .expect("a program is attached");
        assert!(found.is_surge(), "{found:?}");
        assert_eq!(found.mode, shown);
        drop(program);
        assert_eq!(
            attached_program(&a.ifname).expect("query"),
            None,
            "detached on drop ({mode:?})"
        );
    }
}

#[test]
fn a_program_left_by_a_dead_process_is_removed_by_detach_program() {
    let lab = lab("bpf-crash");
    let a = lab.a().clone();
    let _ns = enter_netns(&a.netns).expect("entering ns A");
    let program =
        SteerProgram::attach(&a.ifname, &SteerConfig::default(), AttachMode::Auto).expect("attach");
    // A crash: no Drop runs, the program stays attached.
    std::mem::forget(program);
    assert!(attached_program(&a.ifname).expect("query").is_some());
    let removed = detach_program(&a.ifname, false)
        .expect("detach")
        .expect("something was removed");
    assert!(removed.is_surge());
    assert_eq!(attached_program(&a.ifname).expect("query"), None);
    assert_eq!(
        detach_program(&a.ifname, false).expect("detach again"),
        None,
        "nothing left to remove"
    );
    let link = lab
        .exec(HostId::A, &["ip", "-d", "link", "show", "dev", &a.ifname])
        .expect("ip link");
    assert!(!String::from_utf8_lossy(&link.stdout).contains("prog/xdp"));
}

#[test]
fn a_foreign_program_is_left_alone_unless_forced() {
    let lab = lab("bpf-foreign");
    let a = lab.a().clone();
    // Another XDP program, built from a tiny C file and attached with iproute2.
    let dir = std::env::temp_dir().join(format!("surge-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let source = dir.join("other.c");
    let object = dir.join("other.o");
    std::fs::write(
        &source,
        "#include <linux/bpf.h>\n#define SEC(n) __attribute__((section(n), used))\n\
         SEC(\"xdp\") int other_prog(struct xdp_md *ctx) { return XDP_PASS; }\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .expect("write source");
    let clang = std::process::Command::new("clang")
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
        ])
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .output()
        .expect("clang");
    assert!(
        clang.status.success(),
        "{}",
        String::from_utf8_lossy(&clang.stderr)
    );
    let object_path = object.to_string_lossy().into_owned();
    let attach = lab
        .exec(
            HostId::A,
            &[
                "ip",
                "link",
                "set",
                "dev",
                &a.ifname,
                "xdpgeneric",
                "obj",
                &object_path,
                "sec",
                "xdp",
            ],
        )
        .expect("ip link set xdp");
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );

    let _ns = enter_netns(&a.netns).expect("entering ns A");
    let found = attached_program(&a.ifname)
        .expect("query")
        .expect("attached");
    assert!(!found.is_surge(), "{found:?}");
    assert!(matches!(
        detach_program(&a.ifname, false),
        Err(BpfError::AlreadyAttached { .. })
    ));
    assert!(matches!(
        SteerProgram::attach(&a.ifname, &SteerConfig::default(), AttachMode::Auto),
        Err(BpfError::AlreadyAttached { .. })
    ));
    assert!(
        attached_program(&a.ifname).expect("query").is_some(),
        "left alone"
    );
    let removed = detach_program(&a.ifname, true)
        .expect("forced")
        .expect("removed");
    assert_eq!(removed.name, "other_prog");
    assert_eq!(attached_program(&a.ifname).expect("query"), None);
    let _ = std::fs::remove_dir_all(&dir);
}
