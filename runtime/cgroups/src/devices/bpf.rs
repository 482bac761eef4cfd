//! The v2 device filter: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` implementing a rule list, loaded and
//! attached with the raw `bpf(2)` system call.
//!
//! cgroup v2 has no devices controller: the kernel runs the device programs
//! attached to a process's cgroup and its ancestors on every `open(2)` and
//! `mknod(2)` of a device node, and refuses the access (`EPERM`) unless all
//! of them return 1. [`program`] turns the rules' [`Effective`] form into
//! instructions (pure, unit-tested through an interpreter);
//! [`attach_bpf_device_filter`] loads them and attaches them to a cgroup
//! directory with `BPF_F_ALLOW_MULTI`, so they compose with the programs of
//! the cgroup's ancestors, replacing the device programs already attached
//! to that directory (a previous [`crate::Cgroup::set_devices`]).
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }`, where `access_type` is `(access << 16) | type`
//! (type: block 1, char 2; access: mknod 1, read 2, write 4), into
//! registers, then tests each exception in turn:
//!
//! ```text
//! r2 = ctx->access_type & 0xffff     r3 = ctx->access_type >> 16
//! r4 = ctx->major                    r5 = ctx->minor
//! for each exception:
//!     if r2 != TYPE goto next         (unless the exception is for `a`)
//!     if r4 != MAJOR goto next        (unless `*`)
//!     if r5 != MINOR goto next        (unless `*`)
//!     allow-list: w1 = w3 & ACCESS; if r1 != r3 goto next   (unless `rwm`)
//!     deny-list:  w1 = w3 & ACCESS; if r1 == 0 goto next
//!     return !DEFAULT
//! next: …
//! return DEFAULT
//! ```
//!
//! Loads and 32-bit ALU operations zero-extend, so the 64-bit jumps every
//! kernel knows compare them correctly with immediates up to `i32::MAX`;
//! only a device number above that (no real device has one) needs a 32-bit
//! jump (Linux 5.1+).
//! ```

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::{ACC_ALL, DeviceKind, DeviceRule, Effective, Exception};
use crate::error::{CgroupError, Result};

/// `BPF_PROG_LOAD`.
const BPF_PROG_LOAD: libc::c_int = 5;
/// `BPF_PROG_ATTACH`.
const BPF_PROG_ATTACH: libc::c_int = 8;
/// `BPF_PROG_DETACH`.
const BPF_PROG_DETACH: libc::c_int = 9;
/// `BPF_PROG_GET_FD_BY_ID`.
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
/// `BPF_PROG_QUERY`.
const BPF_PROG_QUERY: libc::c_int = 16;
/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE`, the attach type.
const BPF_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: several programs per cgroup, all of which (and all
/// of the ancestors') must allow.
const BPF_F_ALLOW_MULTI: u32 = 2;
/// `BPF_F_REPLACE`: swap `replace_bpf_fd` for the new program atomically.
const BPF_F_REPLACE: u32 = 4;

/// `BPF_DEVCG_DEV_BLOCK`.
const DEV_BLOCK: u32 = 1;
/// `BPF_DEVCG_DEV_CHAR`.
const DEV_CHAR: u32 = 2;

/// The license the program is loaded under. A device program calls no
/// helper, so it needs no GPL-compatible license.
const LICENSE: &[u8] = b"Apache-2.0\0";
/// The program's name, as `bpftool prog` shows it.
const PROG_NAME: &[u8] = b"lookout_devices";

// Instruction classes, sizes, modes, operations and sources (linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`:
/// opcode, destination and source registers (4 bits each), signed offset,
/// signed immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BpfInsn {
    /// The opcode: class | size/op | mode/source.
    pub(crate) code: u8,
    /// `dst_reg:4, src_reg:4`, in the C bit-field order of the target.
    regs: u8,
    /// The jump offset or memory offset.
    pub(crate) off: i16,
    /// The immediate operand.
    pub(crate) imm: i32,
}

impl BpfInsn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
        #[cfg(target_endian = "little")]
        let regs = (dst & 0x0f) | (src << 4);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | (src & 0x0f);
        BpfInsn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The destination register.
    #[cfg(test)]
    pub(crate) fn dst(&self) -> u8 {
        #[cfg(target_endian = "little")]
        return self.regs & 0x0f;
        #[cfg(target_endian = "big")]
        return self.regs >> 4;
    }

    /// The source register.
    #[cfg(test)]
    pub(crate) fn src(&self) -> u8 {
        #[cfg(target_endian = "little")]
        return self.regs >> 4;
        #[cfg(target_endian = "big")]
        return self.regs & 0x0f;
    }

    /// `dst = *(u32 *)(src + off)`.
    fn load_u32(dst: u8, src: u8, off: i16) -> BpfInsn {
        BpfInsn::new(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
    }

    /// A 32-bit ALU operation with an immediate (`wDST op= imm`).
    fn alu32_imm(op: u8, dst: u8, imm: i32) -> BpfInsn {
        BpfInsn::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }

    /// `wDST = wSRC`.
    fn mov32_reg(dst: u8, src: u8) -> BpfInsn {
        BpfInsn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }

    /// A conditional jump comparing `dst` (a zero-extended 32-bit value)
    /// with `value`; the offset is set later. The 64-bit jump (every
    /// kernel) sign-extends its immediate, so it serves values up to
    /// `i32::MAX` (all real device numbers); larger ones take the 32-bit
    /// jump (Linux 5.1+).
    fn jmp_imm(op: u8, dst: u8, value: u32) -> BpfInsn {
        match i32::try_from(value) {
            Ok(imm) => BpfInsn::new(BPF_JMP | op | BPF_K, dst, 0, 0, imm),
            Err(_) => BpfInsn::new(BPF_JMP32 | op | BPF_K, dst, 0, 0, imm_bits(value)),
        }
    }

    /// A conditional jump comparing two registers; the offset is set later.
    fn jmp_reg(op: u8, dst: u8, src: u8) -> BpfInsn {
        BpfInsn::new(BPF_JMP | op | BPF_X, dst, src, 0, 0)
    }

    /// `exit` (return r0).
    fn exit() -> BpfInsn {
        BpfInsn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
}

/// The ctx registers and the scratch one.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// A `u32`'s bit pattern as an immediate (the 32-bit jumps compare the low
/// 32 bits).
fn imm_bits(n: u32) -> i32 {
    i32::from_ne_bytes(n.to_ne_bytes())
}

/// Emits `return verdict`.
fn ret(out: &mut Vec<BpfInsn>, allow: bool) {
    out.push(BpfInsn::alu32_imm(BPF_MOV, R0, i32::from(allow)));
    out.push(BpfInsn::exit());
}

/// Emits the block testing one exception: jumps past its end on a mismatch,
/// returns `!default_allow` on a match.
fn exception_block(out: &mut Vec<BpfInsn>, ex: &Exception, default_allow: bool) {
    let mut block = Vec::new();
    let mut jumps = Vec::new();
    let mut jump = |block: &mut Vec<BpfInsn>, insn: BpfInsn| {
        jumps.push(block.len());
        block.push(insn);
    };
    match ex.kind {
        DeviceKind::All => {}
        DeviceKind::Block => jump(&mut block, BpfInsn::jmp_imm(BPF_JNE, R_TYPE, DEV_BLOCK)),
        DeviceKind::Char => jump(&mut block, BpfInsn::jmp_imm(BPF_JNE, R_TYPE, DEV_CHAR)),
    }
    if let Some(major) = ex.major {
        jump(&mut block, BpfInsn::jmp_imm(BPF_JNE, R_MAJOR, major));
    }
    if let Some(minor) = ex.minor {
        jump(&mut block, BpfInsn::jmp_imm(BPF_JNE, R_MINOR, minor));
    }
    let access = imm_bits(ex.access);
    if default_allow {
        // A deny exception refuses any request sharing an access bit with it.
        block.push(BpfInsn::mov32_reg(R1, R_ACCESS));
        block.push(BpfInsn::alu32_imm(BPF_AND, R1, access));
        jump(&mut block, BpfInsn::jmp_imm(BPF_JEQ, R1, 0));
    } else if ex.access != ACC_ALL {
        // An allow exception grants a request only when it covers every bit.
        block.push(BpfInsn::mov32_reg(R1, R_ACCESS));
        block.push(BpfInsn::alu32_imm(BPF_AND, R1, access));
        jump(&mut block, BpfInsn::jmp_reg(BPF_JNE, R1, R_ACCESS));
    }
    ret(&mut block, !default_allow);
    let len = block.len();
    for j in jumps {
        // At most 8 instructions per block: the offset always fits.
        block[j].off = i16::try_from(len - j - 1).unwrap_or(i16::MAX);
    }
    out.extend(block);
}

/// The device program implementing `eff`.
pub(crate) fn program(eff: &Effective) -> Vec<BpfInsn> {
    let mut out = vec![
        BpfInsn::load_u32(R_TYPE, R1, 0),
        BpfInsn::alu32_imm(BPF_AND, R_TYPE, 0xffff),
        BpfInsn::load_u32(R_ACCESS, R1, 0),
        BpfInsn::alu32_imm(BPF_RSH, R_ACCESS, 16),
        BpfInsn::load_u32(R_MAJOR, R1, 4),
        BpfInsn::load_u32(R_MINOR, R1, 8),
    ];
    for ex in &eff.exceptions {
        exception_block(&mut out, ex, eff.default_allow);
    }
    ret(&mut out, eff.default_allow);
    out
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH` and `BPF_PROG_DETACH`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `union bpf_attr` for `BPF_PROG_QUERY`, up to `prog_cnt`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for `BPF_PROG_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls `bpf(cmd, attr, sizeof *attr)`.
///
/// # Safety
///
/// `T` must be the `union bpf_attr` variant of `cmd`, and every pointer
/// stored in it must be valid for the kernel to read (or write, for output
/// buffers) for the length the attribute gives.
unsafe fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed `T` of the size passed;
    // the caller vouches for the pointers inside it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Takes ownership of a file descriptor `bpf(2)` returned.
fn owned_fd(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(rc).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned `fd` as a new descriptor of this
    // process; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A descriptor as the `u32` field `bpf_attr` wants.
fn fd_u32(fd: &impl AsRawFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// Loads `insns` as a device program; on failure, returns the verifier's log.
fn load(insns: &[BpfInsn]) -> std::result::Result<OwnedFd, (io::Error, String)> {
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            ..Default::default()
        };
        attr.prog_name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
        if let Some(buf) = log {
            attr.log_level = 1;
            attr.log_size = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            attr.log_buf = buf.as_mut_ptr() as u64;
        }
        // SAFETY: a PROG_LOAD attribute whose instruction array, license
        // string (NUL-terminated) and log buffer outlive the call, with the
        // lengths given.
        unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) }.and_then(owned_fd)
    };
    attempt(None).map_err(|e| {
        let mut buf = vec![0u8; 64 * 1024];
        let _ = attempt(Some(&mut buf));
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        (e, String::from_utf8_lossy(&buf[..end]).into_owned())
    })
}

/// The ids of the device programs attached directly to the cgroup open as `dir_fd`.
fn query(dir_fd: &File) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: fd_u32(dir_fd),
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            ..Default::default()
        };
        // SAFETY: a PROG_QUERY attribute whose id buffer holds `prog_cnt`
        // u32s and outlives the call.
        match unsafe { sys_bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // More programs than room: the kernel said how many.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0u32; attr.prog_cnt as usize];
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens the program with id `id`.
fn prog_fd(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: a GET_FD_BY_ID attribute holds no pointer.
    unsafe { sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }.and_then(owned_fd)
}

/// Attaches (`BPF_PROG_ATTACH`) or detaches (`BPF_PROG_DETACH`) `prog` on `dir_fd`.
fn attach_cmd(
    cmd: libc::c_int,
    dir_fd: &File,
    prog: &OwnedFd,
    flags: u32,
    replace: Option<&OwnedFd>,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(dir_fd),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: replace.map_or(0, fd_u32),
    };
    // SAFETY: an ATTACH/DETACH attribute holds descriptors, no pointer.
    unsafe { sys_bpf(cmd, &mut attr) }.map(|_| ())
}

fn open_dir(dir: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| CgroupError::Bpf {
            op: "open the cgroup directory",
            path: dir.to_path_buf(),
            source,
            log: String::new(),
        })
}

/// Builds the device program implementing `rules` (v1 semantics: see
/// [`Effective`]), loads it and attaches it to the cgroup2 directory `dir`
/// with `BPF_F_ALLOW_MULTI`, replacing the device programs attached to `dir`
/// before (atomically, with `BPF_F_REPLACE`, when there was one). The
/// program is released once attached: the attachment holds it until it is
/// replaced or the cgroup removed. Needs `CAP_SYS_ADMIN` (root) and a
/// kernel with `CONFIG_CGROUP_BPF`.
///
/// [`crate::Cgroup::set_devices`] calls it on v2; on the hybrid layout it
/// uses the v1 `devices` controller instead, like runc, but the cgroup2
/// directory can still be given a filter with this function.
pub fn attach_bpf_device_filter(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let insns = program(&Effective::from_rules(rules)?);
    let err = |op: &'static str, source: io::Error| CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        source,
        log: String::new(),
    };
    let dir_fd = open_dir(dir)?;
    let old = query(&dir_fd).map_err(|e| err("query the attached programs", e))?;
    let prog = load(&insns).map_err(|(source, log)| CgroupError::Bpf {
        op: "load the program",
        path: dir.to_path_buf(),
        source,
        log,
    })?;
    if let [id] = old[..] {
        let old_fd = prog_fd(id).map_err(|e| err("open a previously attached program", e))?;
        match attach_cmd(
            BPF_PROG_ATTACH,
            &dir_fd,
            &prog,
            BPF_F_ALLOW_MULTI | BPF_F_REPLACE,
            Some(&old_fd),
        ) {
            Ok(()) => return Ok(()),
            // Kernels before 5.6 lack BPF_F_REPLACE: attach, then detach.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(err("attach the program", e)),
        }
    }
    attach_cmd(BPF_PROG_ATTACH, &dir_fd, &prog, BPF_F_ALLOW_MULTI, None)
        .map_err(|e| err("attach the program", e))?;
    for id in old {
        let old_fd = match prog_fd(id) {
            Ok(fd) => fd,
            // Detached meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(err("open a previously attached program", e)),
        };
        match attach_cmd(BPF_PROG_DETACH, &dir_fd, &old_fd, 0, None) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err("detach a previously attached program", e)),
        }
    }
    Ok(())
}

/// The ids of the device programs attached directly to the cgroup2
/// directory `dir` (not its ancestors'), as `bpftool cgroup show` lists them.
pub fn attached_device_programs(dir: &Path) -> Result<Vec<u32>> {
    let dir_fd = open_dir(dir)?;
    query(&dir_fd).map_err(|source| CgroupError::Bpf {
        op: "query the attached programs",
        path: dir.to_path_buf(),
        source,
        log: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{ACC_MKNOD, ACC_READ, ACC_WRITE, default_rules};
    use super::*;

    /// A stand-in for the ctx pointer in r1.
    const CTX: u64 = 0xc7c7_0000_0000;

    /// Runs `prog` against a device request the way the kernel would,
    /// checking what the verifier would: known opcodes only, ctx loads at
    /// aligned offsets inside the 12-byte ctx, no read of an unset register,
    /// forward jumps inside the program, r0 set at exit.
    fn run(prog: &[BpfInsn], kind: DeviceKind, major: u32, minor: u32, access: u32) -> bool {
        let dev_type = match kind {
            DeviceKind::Block => 1,
            DeviceKind::Char => 2,
            DeviceKind::All => unreachable!("requests name a block or char device"),
        };
        let ctx = [(access << 16) | dev_type, major, minor];
        let mut regs: [Option<u64>; 11] = [None; 11];
        regs[1] = Some(CTX);
        regs[10] = Some(0xf000);
        let get = |regs: &[Option<u64>; 11], r: u8| {
            regs[usize::from(r)].unwrap_or_else(|| panic!("read of unset r{r}"))
        };
        let mut pc = 0usize;
        loop {
            let insn = prog.get(pc).expect("fell off the end");
            let (dst, src) = (insn.dst(), insn.src());
            assert!(dst <= 10 && src <= 10, "bad register in {insn:?}");
            let class = insn.code & 0x07;
            let mut next = pc + 1;
            match class {
                BPF_LDX => {
                    assert_eq!(insn.code, BPF_LDX | BPF_W | BPF_MEM, "{insn:?}");
                    assert_eq!(get(&regs, src), CTX, "load from non-ctx");
                    let off = usize::try_from(insn.off).expect("negative ctx offset");
                    assert!(off % 4 == 0 && off < 12, "bad ctx offset {off}");
                    regs[usize::from(dst)] = Some(u64::from(ctx[off / 4]));
                }
                BPF_ALU => {
                    let b = if insn.code & BPF_X != 0 {
                        get(&regs, src) as u32
                    } else {
                        insn.imm as u32
                    };
                    let a = || get(&regs, dst) as u32;
                    let v = match insn.code & 0xf0 {
                        BPF_MOV => b,
                        BPF_AND => a() & b,
                        BPF_RSH => a() >> b,
                        op => panic!("unexpected ALU op {op:#x}"),
                    };
                    assert_ne!(dst, 10, "write to the frame pointer");
                    regs[usize::from(dst)] = Some(u64::from(v));
                }
                BPF_JMP if insn.code == BPF_JMP | BPF_EXIT => {
                    let r0 = get(&regs, 0);
                    assert!(r0 <= 1, "returns {r0}");
                    return r0 == 1;
                }
                BPF_JMP | BPF_JMP32 => {
                    // JMP compares 64 bits (the immediate sign-extended),
                    // JMP32 the low 32 bits.
                    let wide = class == BPF_JMP;
                    let narrow = |v: u64| if wide { v } else { u64::from(v as u32) };
                    let a = narrow(get(&regs, dst));
                    let b = narrow(if insn.code & BPF_X != 0 {
                        get(&regs, src)
                    } else {
                        i64::from(insn.imm) as u64
                    });
                    let taken = match insn.code & 0xf0 {
                        BPF_JEQ => a == b,
                        BPF_JNE => a != b,
                        op => panic!("unexpected jump op {op:#x}"),
                    };
                    assert!(insn.off > 0, "backward or null jump at {pc}");
                    if taken {
                        next = pc + 1 + insn.off as usize;
                    }
                    assert!(next < prog.len(), "jump out of the program at {pc}");
                }
                _ => panic!("unexpected instruction class in {insn:?}"),
            }
            pc = next;
        }
    }

    fn rules(lines: &[(&str, bool)]) -> Vec<DeviceRule> {
        lines
            .iter()
            .map(|(l, allow)| DeviceRule {
                allow: *allow,
                ..DeviceRule::parse(l).unwrap()
            })
            .collect()
    }

    #[test]
    fn encoding() {
        let mov = BpfInsn::alu32_imm(BPF_MOV, R0, 1);
        let ldx = BpfInsn::load_u32(R_MINOR, R1, 8);
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
        let bytes = |i: &BpfInsn| -> [u8; 8] {
            let mut b = [0u8; 8];
            b[0] = i.code;
            b[1] = i.regs;
            b[2..4].copy_from_slice(&i.off.to_ne_bytes());
            b[4..].copy_from_slice(&i.imm.to_ne_bytes());
            b
        };
        if cfg!(target_endian = "little") {
            assert_eq!(bytes(&mov), [0xb4, 0x00, 0, 0, 1, 0, 0, 0]);
            assert_eq!(bytes(&ldx), [0x61, 0x15, 8, 0, 0, 0, 0, 0]);
            assert_eq!(bytes(&BpfInsn::exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!((ldx.dst(), ldx.src()), (R_MINOR, R1));
        let j = BpfInsn::jmp_reg(BPF_JNE, R1, R_ACCESS);
        assert_eq!((j.code, j.dst(), j.src()), (0x5d, R1, R_ACCESS));
        assert_eq!(BpfInsn::jmp_imm(BPF_JEQ, R1, 0).code, 0x15);
        // Past i32::MAX the 64-bit jump's sign extension would not match a
        // zero-extended register: the 32-bit jump takes over.
        let big = BpfInsn::jmp_imm(BPF_JNE, R_MAJOR, u32::MAX - 1);
        assert_eq!((big.code, big.imm), (0x56, -2));
        assert_eq!(BpfInsn::jmp_imm(BPF_JNE, R_MAJOR, 1 << 31).code, 0x56);
        let edge = BpfInsn::jmp_imm(BPF_JNE, R_MAJOR, i32::MAX.unsigned_abs());
        assert_eq!(edge.code, 0x55);
        assert_eq!(BpfInsn::mov32_reg(R1, R_ACCESS).code, 0xbc);
    }

    #[test]
    fn default_program_shape() {
        let eff = Effective::from_rules(&default_rules()).unwrap();
        let prog = program(&eff);
        // Six ctx loads, then one block per exception, then `return 0`.
        assert_eq!(prog[0], BpfInsn::load_u32(R_TYPE, R1, 0));
        assert_eq!(prog[5], BpfInsn::load_u32(R_MINOR, R1, 8));
        assert_eq!(
            &prog[prog.len() - 2..],
            &[BpfInsn::alu32_imm(BPF_MOV, R0, 0), BpfInsn::exit()]
        );
        let exits = prog.iter().filter(|i| **i == BpfInsn::exit()).count();
        assert_eq!(exits, eff.exceptions.len() + 1);
        // `c *:* m` and `b *:* m`: type, access test (3), return 1.
        assert_eq!(
            &prog[6..12],
            &[
                BpfInsn {
                    off: 5,
                    ..BpfInsn::jmp_imm(BPF_JNE, R_TYPE, DEV_CHAR)
                },
                BpfInsn::mov32_reg(R1, R_ACCESS),
                BpfInsn::alu32_imm(BPF_AND, R1, 1),
                BpfInsn {
                    off: 2,
                    ..BpfInsn::jmp_reg(BPF_JNE, R1, R_ACCESS)
                },
                BpfInsn::alu32_imm(BPF_MOV, R0, 1),
                BpfInsn::exit(),
            ]
        );
        // `c 1:3 rwm`: type, major, minor, return 1 — no access test.
        let block = &prog[18..23];
        assert_eq!(
            block,
            &[
                BpfInsn {
                    off: 4,
                    ..BpfInsn::jmp_imm(BPF_JNE, R_TYPE, DEV_CHAR)
                },
                BpfInsn {
                    off: 3,
                    ..BpfInsn::jmp_imm(BPF_JNE, R_MAJOR, 1)
                },
                BpfInsn {
                    off: 2,
                    ..BpfInsn::jmp_imm(BPF_JNE, R_MINOR, 3)
                },
                BpfInsn::alu32_imm(BPF_MOV, R0, 1),
                BpfInsn::exit(),
            ]
        );
        // No rules at all: allow everything.
        let none = program(&Effective::from_rules(&[]).unwrap());
        assert_eq!(none.len(), 8);
        assert!(run(&none, DeviceKind::Block, 8, 0, ACC_ALL));
    }

    #[test]
    fn default_program_decides_like_runc() {
        let prog = program(&Effective::from_rules(&default_rules()).unwrap());
        let (c, b) = (DeviceKind::Char, DeviceKind::Block);
        let rw = ACC_READ | ACC_WRITE;
        for (kind, major, minor, access, want) in [
            (c, 1, 3, rw, true),          // /dev/null
            (c, 1, 3, ACC_ALL, true),     //
            (c, 1, 5, ACC_READ, true),    // /dev/zero
            (c, 1, 9, ACC_READ, true),    // /dev/urandom
            (c, 5, 2, rw, true),          // /dev/ptmx
            (c, 136, 42, rw, true),       // /dev/pts/42
            (c, 10, 200, rw, true),       // /dev/net/tun
            (c, 1, 1, ACC_MKNOD, true),   // mknod /dev/mem
            (c, 1, 1, ACC_READ, false),   // open /dev/mem
            (b, 254, 0, ACC_MKNOD, true), // mknod a disk
            (b, 254, 0, ACC_READ, false), // open a disk
            (b, 254, 0, ACC_READ | ACC_MKNOD, false),
            (b, 1, 3, ACC_READ, false), // block 1:3 is not /dev/null
            (c, 10, 229, rw, false),    // /dev/fuse
            (c, 4, 0, ACC_WRITE, false),
        ] {
            assert_eq!(
                run(&prog, kind, major, minor, access),
                want,
                "{kind:?} {major}:{minor} access {access}"
            );
        }
    }

    /// The program agrees with the v1 semantics on every request of a grid,
    /// for allow-lists and deny-lists.
    #[test]
    fn programs_match_v1_semantics() {
        let lists = [
            default_rules(),
            vec![],
            rules(&[("a", true)]),
            rules(&[("a", false)]),
            rules(&[
                ("a", true),
                ("c 1:3 w", false),
                ("b *:* rm", false),
                ("c 5:* m", false),
            ]),
            rules(&[
                ("a", false),
                ("c 1:* r", true),
                ("c 1:3 w", true),
                ("b 8:0 rw", true),
                ("b 8:0 w", false),
                ("c *:7 m", true),
                ("c 136:* rwm", true),
                ("c 4294967294:1 rwm", true),
            ]),
        ];
        let majors = [0, 1, 4, 5, 8, 10, 136, 254, u32::MAX - 1];
        let minors = [0, 1, 2, 3, 5, 7, 9, 200, u32::MAX - 1];
        for list in &lists {
            let eff = Effective::from_rules(list).unwrap();
            let prog = program(&eff);
            for kind in [DeviceKind::Char, DeviceKind::Block] {
                for &major in &majors {
                    for &minor in &minors {
                        for access in 1..=ACC_ALL {
                            assert_eq!(
                                run(&prog, kind, major, minor, access),
                                eff.allows(kind, major, minor, access),
                                "{list:?}: {kind:?} {major}:{minor} access {access}"
                            );
                        }
                    }
                }
            }
        }
        // Spot checks of the hand-built lists.
        let eff = Effective::from_rules(&lists[4]).unwrap();
        let prog = program(&eff);
        assert!(run(&prog, DeviceKind::Char, 1, 3, ACC_READ));
        assert!(!run(&prog, DeviceKind::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(run(&prog, DeviceKind::Block, 8, 0, ACC_WRITE));
        assert!(!run(&prog, DeviceKind::Block, 8, 0, ACC_MKNOD));
        assert!(!run(&prog, DeviceKind::Block, 8, 0, ACC_READ | ACC_WRITE));
        assert!(!run(&prog, DeviceKind::Char, 5, 1, ACC_MKNOD));
        let eff = Effective::from_rules(&lists[5]).unwrap();
        let prog = program(&eff);
        assert!(run(&prog, DeviceKind::Char, 1, 8, ACC_READ));
        assert!(!run(&prog, DeviceKind::Char, 1, 8, ACC_WRITE));
        assert!(run(&prog, DeviceKind::Char, 1, 3, ACC_WRITE));
        assert!(!run(&prog, DeviceKind::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(run(&prog, DeviceKind::Block, 8, 0, ACC_READ));
        assert!(!run(&prog, DeviceKind::Block, 8, 0, ACC_WRITE));
        assert!(run(&prog, DeviceKind::Char, 99, 7, ACC_MKNOD));
        assert!(run(&prog, DeviceKind::Char, u32::MAX - 1, 1, ACC_ALL));
        assert!(!run(&prog, DeviceKind::Char, u32::MAX - 1, 2, ACC_READ));
    }
}
