//! `surge-bench`: side-by-side system benchmarks (criterion micro-benchmarks live in `benches/`).

mod bulk;
mod compare;
mod datapath;
mod engine;
mod frame_echo;
mod idle_memory;
mod instructions;
// The counting allocator of the memory tests, for `surge-bench idle-memory`: an atomic
// add per allocation; the engines allocate nothing per packet, so the other benchmarks
// do not see it.
#[global_allocator]
static ALLOCATOR: surge_datapath::alloc_count::CountingAllocator =
    surge_datapath::alloc_count::CountingAllocator;

use clap::{Parser, Subcommand};

/// surge's system benchmarks; each prints a table of ratios from one run.
#[derive(Parser)]
#[command(name = "surge-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One bulk connection per MTU: surge vs the kernel vs iperf3 vs the raw AF_XDP frame rate.
    Bulk(bulk::BulkArgs),
    /// surge against nginx, wrk, sockperf and iperf3 on one lab veth pair: one table of ratios.
    Compare(compare::CompareArgs),
    /// XSK to XSK across one veth pair: surge-datapath vs a direct xsk-rs loop vs AF_PACKET.
    Datapath(datapath::DatapathArgs),
    /// 64-byte echo: surge's engine vs the kernel (lab veth pair, same kernel client) and vs smoltcp (in memory).
    Engine(engine::EngineArgs),
    /// Raw AF_XDP frame echo across one veth pair (B -> A -> B, no stack): the request/response ceiling.
    FrameEcho(frame_echo::FrameEchoArgs),
    /// Stack memory per idle connection, in memory (counting allocator): 100k and 1M.
    IdleMemory(idle_memory::IdleMemoryArgs),
    /// Instructions per 64-byte echo in memory under callgrind: surge vs smoltcp (needs valgrind).
    Instructions(instructions::InstructionsArgs),
}

fn main() -> anyhow::Result<()> {
    // As `surge` does: the heap on transparent huge pages unless SURGE_HUGE_PAGES=0.
    let _ = surge_stack::runtime::huge_pages::reexec_with_huge_pages();
    match Cli::parse().command {
        Command::Bulk(args) => bulk::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Datapath(args) => datapath::run(args),
        Command::Engine(args) => engine::run(args),
        Command::FrameEcho(args) => frame_echo::run(args),
        Command::IdleMemory(args) => idle_memory::run(args),
        Command::Instructions(args) => instructions::run(args),
    }
}
