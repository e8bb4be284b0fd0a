//! Connection state is compact (issue: at most 2 KB per established connection,
//! excluding its data buffers, so a million idle connections fit in a few GB).
//! The buffers themselves are allocated on the first byte written
//! (`tcp::buffer`), so an idle connection holds none.

use surge_stack::socket::TcpSock;
use surge_stack::tcp::Tcb;

#[test]
fn an_established_connection_takes_at_most_two_kilobytes_besides_its_buffers() {
    let socket = core::mem::size_of::<TcpSock>();
    let tcb = core::mem::size_of::<Tcb>();
    // A connection is its socket slot plus the boxed TCB, plus the connection
    // table's entry (4-tuple key and socket id) and a timer-wheel slot.
    let table_entry = core::mem::size_of::<(surge_stack::wire::FourTuple, u32)>() + 16;
    let total = socket + tcb + table_entry;
    eprintln!("TcpSock {socket} B, Tcb {tcb} B, table entry ~{table_entry} B: {total} B");
    assert!(total <= 2048, "{total} bytes per connection");
}
