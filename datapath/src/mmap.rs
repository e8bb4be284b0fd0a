//! Owned memory mappings: the UMEM area (anonymous, hugepages when available)
//! and the four AF_XDP rings (mapped from the socket).

use std::{io, os::fd::RawFd, ptr::NonNull};

/// One `mmap`ed region, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
    huge_pages: bool,
    /// False only for test aliases, which must not unmap.
    owned: bool,
}

// Safety: the mapping is plain memory owned by this value; moving the owner to
// another thread moves the only handle that unmaps it.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of zeroed anonymous memory, trying 2 MiB hugepages
    /// first when `try_huge_pages` is set and falling back to normal pages.
    pub(crate) fn anonymous(len: usize, try_huge_pages: bool) -> io::Result<Self> {
        if try_huge_pages {
            let huge_len = len.div_ceil(2 << 20) * (2 << 20);
            if let Ok(map) = Self::map(huge_len, libc::MAP_HUGETLB, -1, 0) {
                return Ok(Self {
                    huge_pages: true,
                    ..map
                });
            }
        }
        Self::map(len, 0, -1, 0)
    }

    /// Maps `len` bytes of the socket `fd` at page offset `offset` (an AF_XDP ring).
    pub(crate) fn ring(fd: RawFd, len: usize, offset: libc::off_t) -> io::Result<Self> {
        Self::map(len, libc::MAP_POPULATE, fd, offset)
    }

    fn map(
        len: usize,
        extra_flags: libc::c_int,
        fd: RawFd,
        offset: libc::off_t,
    ) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "zero-length mapping",
            ));
        }
        let flags = if fd < 0 {
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags
        } else {
            libc::MAP_SHARED | extra_flags
        };
        // Safety: a fresh mapping at an address the kernel chooses; no existing
        // memory is touched. The result is checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self {
            ptr,
            len,
            huge_pages: false,
            owned: true,
        })
    }

    /// A second, non-owning view of a mapping, for ring tests that play both sides.
    ///
    /// # Safety
    /// `ptr`/`len` must describe a live mapping that outlives the alias.
    #[cfg(test)]
    pub(crate) unsafe fn alias_for_tests(ptr: *mut u8, len: usize) -> Self {
        let ptr = NonNull::new(ptr).expect("non-null test mapping");
        Self {
            ptr,
            len,
            huge_pages: false,
            owned: false,
        }
    }

    /// Start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is backed by hugepages.
    pub(crate) fn huge_pages(&self) -> bool {
        self.huge_pages
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // Safety: `ptr`/`len` describe a mapping made by `Mmap::map` and owned
        // by this value only; nothing borrows it past this point.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
