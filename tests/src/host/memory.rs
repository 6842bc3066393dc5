//! Reading and writing guest memory from inside a hostcall, and handing bytes to the
//! guest the way Envoy does: allocate with the module's `proxy_on_memory_allocate`, copy,
//! then write the pointer and size into the guest's out-parameters.

use wasmtime::Caller;

use super::abi::{len_u32, Status};
use super::state::HostState;

/// Why a hostcall did not return `Ok`: a status for the guest, or a trap that unwinds it.
pub(crate) enum Fault {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for Fault {
    fn from(status: Status) -> Fault {
        Fault::Status(status)
    }
}

pub(crate) type HostResult<T = ()> = Result<T, Fault>;

/// A host-side failure that must stop the guest (a harness bug, not a guest mistake).
pub(crate) fn trap(message: impl Into<String>) -> Fault {
    Fault::Trap(wasmtime::Error::msg(message.into()))
}

fn memory(caller: &Caller<'_, HostState>) -> HostResult<wasmtime::Memory> {
    caller.data().guest.memory.ok_or_else(|| trap("the module exports no memory named `memory`"))
}

/// Guest pointers and sizes arrive as i32; they are unsigned 32-bit addresses.
pub(crate) fn addr(raw: i32) -> usize {
    raw as u32 as usize
}

/// Copies `len` bytes at `ptr` out of guest memory; out of bounds is
/// `InvalidMemoryAccess`, as in Envoy.
pub(crate) fn read(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> HostResult<Vec<u8>> {
    let mem = memory(caller)?;
    let data = mem.data(caller);
    let start = addr(ptr);
    let end = start.checked_add(addr(len)).ok_or(Status::InvalidMemoryAccess)?;
    data.get(start..end).map(<[u8]>::to_vec).ok_or(Fault::Status(Status::InvalidMemoryAccess))
}

/// Guest text (names, keys); invalid UTF-8 is replaced, never a trap.
pub(crate) fn read_string(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> HostResult<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

pub(crate) fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> HostResult {
    let mem = memory(caller)?;
    let data = mem.data_mut(caller);
    let start = addr(ptr);
    let end = start.checked_add(bytes.len()).ok_or(Status::InvalidMemoryAccess)?;
    data.get_mut(start..end).ok_or(Fault::Status(Status::InvalidMemoryAccess))?.copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, value: u64) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

/// Places `bytes` in guest memory and writes pointer and size to the out-params. Empty
/// bytes are written as pointer 0, size 0 without allocating (Envoy's
/// `copyToPointerSize`); the SDK reads a null pointer as "no value".
pub(crate) fn copy_out(caller: &mut Caller<'_, HostState>, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> HostResult {
    let mut ptr = 0u32;
    if !bytes.is_empty() {
        ptr = allocate(caller, bytes.len())?;
        write(caller, ptr as i32, bytes)?;
    }
    write_u32(caller, ptr_ptr, ptr)?;
    write_u32(caller, size_ptr, len_u32(bytes.len()))
}

/// Calls the guest's allocator; the memory then belongs to the guest (the SDK frees it).
fn allocate(caller: &mut Caller<'_, HostState>, size: usize) -> HostResult<u32> {
    let alloc =
        caller.data().guest.allocate.clone().ok_or_else(|| trap("the module exports no `proxy_on_memory_allocate`"))?;
    let size = i32::try_from(size).map_err(|_| Status::InvalidMemoryAccess)?;
    let ptr = alloc.call(&mut *caller, size).map_err(Fault::Trap)?;
    if ptr == 0 {
        return Err(Fault::Status(Status::InvalidMemoryAccess));
    }
    Ok(ptr as u32)
}
