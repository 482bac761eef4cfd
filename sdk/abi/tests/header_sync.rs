//! Keeps `sdk/include/lookout_plugin.h` in sync with `sdk/abi/src/lib.rs`.
//!
//! The test builds a table of every structure, field, type alias and
//! constant of the Rust ABI with what Rust says about it (size, alignment,
//! offset, value, and the C spelling of each field's type), generates a C
//! program that includes the header and prints the same facts as C sees
//! them, compiles it with the compiler the `cc` crate finds, runs it and
//! compares. Types are compared with C11 `_Generic`, so a signedness or a
//! function-signature drift fails even when sizes agree.
//!
//! To catch a field or constant added on the Rust side only, the test also
//! scans `lib.rs` for every `pub struct` field, `pub const` and `pub type`
//! and fails when the table misses one: add it to the table below (and to
//! the header).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of, size_of_val};
use std::path::{Path, PathBuf};
use std::process::Command;

use lookout_abi::*;

// ------------------------------------------------------------ C spellings

/// The C spelling of a Rust type used in the ABI, as the header must declare
/// it (east-const, so pointers compose: `*const *mut T` is `T * const *`).
trait CType {
    fn c() -> String;
}

macro_rules! c_type {
    ($($t:ty => $c:expr),* $(,)?) => {
        $(impl CType for $t {
            fn c() -> String {
                $c.to_string()
            }
        })*
    };
}

c_type! {
    () => "void",
    c_void => "void",
    u8 => "uint8_t",
    // `c_char` on the targets where it is `i8`; see `accepts` for the others.
    i8 => "char",
    u16 => "uint16_t",
    u32 => "uint32_t",
    u64 => "uint64_t",
    usize => "size_t",
    i64 => "int64_t",
    f64 => "double",
    LkBytes => "lk_bytes_t",
    LkKv => "lk_kv_t",
    LkErrBuf => "lk_err_buf_t",
    LkLogRecord => "lk_log_record_t",
    LkMetricSample => "lk_metric_sample_t",
    LkContainerInfo => "lk_container_info_t",
    LkHost => "lk_host_t",
    LkPlugin => "lk_plugin_t",
    LkFns => "lk_fns_t",
}

impl<T: CType> CType for *const T {
    fn c() -> String {
        format!("{} const *", T::c())
    }
}

impl<T: CType> CType for *mut T {
    fn c() -> String {
        format!("{} *", T::c())
    }
}

/// A nullable function pointer is the plain function pointer in C.
impl<T: CType> CType for Option<T> {
    fn c() -> String {
        T::c()
    }
}

macro_rules! c_fn_type {
    ($($a:ident),+) => {
        impl<R: CType, $($a: CType),+> CType for unsafe extern "C" fn($($a),+) -> R {
            fn c() -> String {
                let args: Vec<String> = vec![$($a::c()),+];
                format!("{} (*)({})", R::c(), args.join(", "))
            }
        }
    };
}

c_fn_type!(A);
c_fn_type!(A, B);
c_fn_type!(A, B, C);
c_fn_type!(A, B, C, D);
c_fn_type!(A, B, C, D, E);

/// The C type names `_Generic` should accept for a Rust spelling. Byte
/// pointers also accept the other byte type: Rust's `c_char` is `u8` on
/// some targets, where `*const c_char` cannot be told from `*const u8`.
fn accepts(spelling: &str) -> Vec<String> {
    let mut v = vec![spelling.to_string()];
    for (a, b) in [("uint8_t ", "char "), ("char ", "uint8_t ")] {
        if let Some(rest) = spelling.strip_prefix(a)
            && rest.starts_with("const *")
        {
            v.push(format!("{b}{rest}"));
        }
    }
    v
}

fn field_size<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

fn field_c<T, F: CType>(_: impl Fn(&T) -> &F) -> String {
    F::c()
}

/// `LkErrBuf` becomes `lk_err_buf_t`.
fn c_type_name(rust: &str) -> String {
    let mut s = String::new();
    for (i, ch) in rust.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(ch.to_ascii_lowercase());
        } else {
            s.push(ch);
        }
    }
    s + "_t"
}

/// `LK_OK` stays; `ABI_MAJOR` becomes `LOOKOUT_ABI_MAJOR`.
fn c_const_name(rust: &str) -> String {
    if rust.starts_with("LK_") {
        rust.to_string()
    } else {
        format!("LOOKOUT_{rust}")
    }
}

// --------------------------------------------------------------- the table

struct Field {
    name: &'static str,
    offset: usize,
    size: usize,
    c: String,
}

struct Struct {
    rust: &'static str,
    size: usize,
    align: usize,
    fields: Vec<Field>,
}

macro_rules! structs {
    ($($s:ident { $($f:ident),* $(,)? })*) => {
        vec![$(Struct {
            rust: stringify!($s),
            size: size_of::<$s>(),
            align: align_of::<$s>(),
            fields: vec![$(Field {
                name: stringify!($f),
                offset: offset_of!($s, $f),
                size: field_size(|s: &$s| &s.$f),
                c: field_c(|s: &$s| &s.$f),
            }),*],
        }),*]
    };
}

fn structs() -> Vec<Struct> {
    structs! {
        LkBytes { ptr, len }
        LkKv { key, value }
        LkErrBuf { buf, cap, len }
        LkLogRecord {
            line, time_unix_nano, stream, flags, partial_id, partial_ordinal, reserved,
        }
        LkMetricSample {
            name, help, unit, kind, reserved, value, time_unix_nano, labels, n_labels,
        }
        LkContainerInfo {
            struct_size, id, name, image_id, image_name, command, hostname, daemon_name,
            log_dir, created_unix_nano, labels, n_labels, env, n_env,
        }
        LkHost { struct_size, abi_major, abi_minor, reserved, host_version, log, log_ctx }
        LkPlugin {
            struct_size, abi_major, abi_minor, kind, caps, name, version, build_info, fns,
        }
        LkFns {
            struct_size, validate, init, start, write_logs, write_metrics, flush, stop,
            shutdown,
        }
    }
}

struct Alias {
    rust: &'static str,
    size: usize,
    c: String,
}

macro_rules! aliases {
    ($($t:ident),* $(,)?) => {
        vec![$(Alias { rust: stringify!($t), size: size_of::<$t>(), c: <$t as CType>::c() }),*]
    };
}

fn aliases() -> Vec<Alias> {
    aliases![
        LkEntryFn,
        LkStatus,
        LkKind,
        LkLogLevel,
        LkValidateFn,
        LkInitFn,
        LkStartFn,
        LkWriteLogsFn,
        LkWriteMetricsFn,
        LkFlushFn,
        LkStopFn,
        LkShutdownFn,
    ]
}

/// What a constant must look like in C.
enum ConstValue {
    /// An integer; with its C type when C can express it (C has no 16-bit
    /// constants: those are plain `int` there).
    Int(u64, Option<(usize, String)>),
    /// A string literal.
    Str(&'static str),
}

trait RustConst {
    fn value(&self) -> ConstValue;
}

impl RustConst for u16 {
    fn value(&self) -> ConstValue {
        ConstValue::Int(u64::from(*self), None)
    }
}

impl RustConst for u32 {
    fn value(&self) -> ConstValue {
        ConstValue::Int(u64::from(*self), Some((size_of_val(self), u32::c())))
    }
}

impl RustConst for u64 {
    fn value(&self) -> ConstValue {
        ConstValue::Int(*self, Some((size_of_val(self), u64::c())))
    }
}

impl RustConst for &'static str {
    fn value(&self) -> ConstValue {
        ConstValue::Str(self)
    }
}

macro_rules! consts {
    ($($c:ident),* $(,)?) => {
        vec![$((stringify!($c), RustConst::value(&$c))),*]
    };
}

fn consts() -> Vec<(&'static str, ConstValue)> {
    consts![
        ABI_MAJOR,
        ABI_MINOR,
        ENTRY_SYMBOL,
        LK_OK,
        LK_RETRY,
        LK_DROP,
        LK_FATAL,
        LK_KIND_LOG,
        LK_KIND_METRICS,
        LK_CAP_PARTIAL_METADATA,
        LK_CAP_READABLE,
        LK_STREAM_STDIN,
        LK_STREAM_STDOUT,
        LK_STREAM_STDERR,
        LK_REC_PARTIAL,
        LK_REC_PARTIAL_LAST,
        LK_METRIC_COUNTER,
        LK_METRIC_GAUGE,
        LK_LEVEL_ERROR,
        LK_LEVEL_WARN,
        LK_LEVEL_INFO,
        LK_LEVEL_DEBUG,
    ]
}

// ------------------------------------------------------ the C program

/// A generated C program and the output Rust expects from it, one
/// `key=value` line per check.
#[derive(Default)]
struct Program {
    body: String,
    expected: BTreeMap<String, String>,
}

impl Program {
    /// Prints `(size_t)(expr)`.
    fn num(&mut self, key: String, expr: &str, expected: usize) {
        self.line(
            &key,
            "%zu",
            &format!("(size_t)({expr})"),
            expected.to_string(),
        );
    }

    /// Prints 1 when `expr` has one of the types `c` accepts.
    fn has_type(&mut self, key: &str, expr: &str, c: &str) {
        let assoc: String = accepts(c).iter().map(|t| format!("{t}: 1, ")).collect();
        let key = format!("{key} has type `{c}`");
        let e = format!("_Generic(({expr}), {assoc}default: 0)");
        self.line(&key, "%d", &e, "1".to_string());
    }

    fn line(&mut self, key: &str, fmt: &str, expr: &str, expected: String) {
        assert!(!key.contains(['"', '\\', '%', '=']), "bad key {key}");
        writeln!(self.body, "    printf(\"{key}={fmt}\\n\", {expr});").unwrap();
        assert!(self.expected.insert(key.to_string(), expected).is_none());
    }

    fn source(&self) -> String {
        format!(
            "#include <stdio.h>\n#include \"lookout_plugin.h\"\n\n\
             int main(void) {{\n{}    return 0;\n}}\n",
            self.body
        )
    }
}

fn program() -> Program {
    let mut p = Program::default();
    for s in structs() {
        let c = c_type_name(s.rust);
        p.num(format!("sizeof {c}"), &format!("sizeof({c})"), s.size);
        p.num(format!("alignof {c}"), &format!("_Alignof({c})"), s.align);
        for f in &s.fields {
            let key = format!("{c}.{}", f.name);
            let member = format!("(({c} *)0)->{}", f.name);
            p.num(
                format!("offsetof {key}"),
                &format!("offsetof({c}, {})", f.name),
                f.offset,
            );
            p.num(
                format!("sizeof {key}"),
                &format!("sizeof({member})"),
                f.size,
            );
            p.has_type(&key, &member, &f.c);
        }
    }
    for a in aliases() {
        let c = c_type_name(a.rust);
        p.num(format!("sizeof {c}"), &format!("sizeof({c})"), a.size);
        p.has_type(&c, &format!("({c})0"), &a.c);
    }
    for (rust, value) in consts() {
        let c = c_const_name(rust);
        match value {
            ConstValue::Int(v, ty) => {
                p.line(
                    &format!("value {c}"),
                    "%llu",
                    &format!("(unsigned long long)({c})"),
                    v.to_string(),
                );
                if let Some((size, cty)) = ty {
                    p.num(format!("sizeof {c}"), &format!("sizeof({c})"), size);
                    p.has_type(&c, &c, &cty);
                }
            }
            ConstValue::Str(s) => p.line(&format!("value {c}"), "%s", &c, s.to_string()),
        }
    }
    // The entry point is declared under the name the host looks up, with the
    // entry function type (unevaluated: the program does not define it).
    p.has_type(
        &format!("&{ENTRY_SYMBOL}"),
        &format!("&{ENTRY_SYMBOL}"),
        &LkEntryFn::c(),
    );
    p
}

// ------------------------------------------------------- compiling

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn include_dir() -> PathBuf {
    repo_root().join("sdk/include")
}

/// The target this test runs on, for `cc` (test binaries do not get the
/// `TARGET` variable build scripts get).
fn target_triple() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" if cfg!(target_env = "musl") => format!("{arch}-unknown-linux-musl"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        os => panic!("header_sync: add a target triple for {arch}/{os}"),
    }
}

/// A scratch directory unique to this process and test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("header_sync-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The C (or C++) compiler, found the way build scripts find it (`CC`,
/// `CXX`, `CFLAGS`, … are honoured).
fn compiler(cpp: bool, out_dir: &Path) -> Command {
    let target = target_triple();
    let tool = cc::Build::new()
        .cpp(cpp)
        .target(&target)
        .host(&target)
        .opt_level(0)
        .debug(false)
        .out_dir(out_dir)
        .cargo_metadata(false)
        .get_compiler();
    assert!(
        !tool.is_like_msvc(),
        "header_sync drives gcc/clang-style compilers only"
    );
    let mut cmd = tool.to_command();
    cmd.args(["-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(include_dir());
    cmd
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{cmd:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ------------------------------------------------------- scanning lib.rs

/// Names declared in `lib.rs`: `Struct.field`, constants and type aliases.
#[derive(Default, Debug)]
struct Declared {
    fields: BTreeSet<String>,
    structs: BTreeSet<String>,
    consts: BTreeSet<String>,
    types: BTreeSet<String>,
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Line scanning, which is enough for this file's rustfmt'ed style: items at
/// column 0, one field per line.
fn scan(src: &str) -> Declared {
    let mut d = Declared::default();
    let mut in_struct: Option<String> = None;
    for line in src.lines() {
        if let Some(s) = &in_struct {
            if line.starts_with('}') {
                in_struct = None;
            } else if let Some(rest) = line.trim_start().strip_prefix("pub ") {
                d.fields.insert(format!("{s}.{}", ident(rest)));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = ident(rest).to_string();
            assert!(
                line.trim_end().ends_with('{'),
                "header_sync cannot scan `{line}`: declare fields in braces"
            );
            d.structs.insert(name.clone());
            in_struct = Some(name);
        } else if let Some(rest) = line.strip_prefix("pub const ") {
            if !rest.starts_with("fn ") {
                d.consts.insert(ident(rest).to_string());
            }
        } else if let Some(rest) = line.strip_prefix("pub type ") {
            d.types.insert(ident(rest).to_string());
        } else if line.starts_with("pub ")
            && !line.starts_with("pub fn ")
            && !line.starts_with("pub const fn ")
        {
            panic!("header_sync does not know this kind of item: `{line}`");
        }
    }
    d
}

// ------------------------------------------------------------------ tests

#[test]
fn header_matches_rust_layout_and_constants() {
    let dir = scratch("layout");
    let p = program();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, p.source()).unwrap();

    let mut cc = compiler(false, &dir);
    cc.arg("-std=c11").arg(&src).arg("-o").arg(&exe);
    run(cc, "compiling the layout program");
    let out = run(Command::new(&exe), "running the layout program");

    let mut seen = BTreeMap::new();
    for line in out.lines() {
        let (k, v) = line.split_once('=').expect("key=value");
        seen.insert(k.to_string(), v.to_string());
    }
    let mut bad = Vec::new();
    for (k, want) in &p.expected {
        match seen.get(k) {
            Some(got) if got == want => {}
            Some(got) => bad.push(format!("{k}: C says {got}, Rust says {want}")),
            None => bad.push(format!("{k}: missing from the C output")),
        }
    }
    assert!(
        bad.is_empty(),
        "lookout_plugin.h disagrees with lookout-abi:\n  {}\n(program kept at {})",
        bad.join("\n  "),
        src.display()
    );
    assert!(p.expected.len() > 150, "suspiciously few checks");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_rust_item_is_compared() {
    let src = std::fs::read_to_string(repo_root().join("sdk/abi/src/lib.rs")).unwrap();
    let declared = scan(&src);

    let structs = structs();
    let covered_structs: BTreeSet<String> = structs.iter().map(|s| s.rust.to_string()).collect();
    let covered_fields: BTreeSet<String> = structs
        .iter()
        .flat_map(|s| {
            s.fields
                .iter()
                .map(move |f| format!("{}.{}", s.rust, f.name))
        })
        .collect();
    let covered_consts: BTreeSet<String> = consts().iter().map(|c| c.0.to_string()).collect();
    let covered_types: BTreeSet<String> = aliases().iter().map(|a| a.rust.to_string()).collect();

    let mut missing = Vec::new();
    for (what, decl, cov) in [
        ("struct", &declared.structs, &covered_structs),
        ("field", &declared.fields, &covered_fields),
        ("const", &declared.consts, &covered_consts),
        ("type", &declared.types, &covered_types),
    ] {
        for name in decl.difference(cov) {
            missing.push(format!("{what} {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "declared in sdk/abi/src/lib.rs but not compared with lookout_plugin.h \
         (add them to the header and to tests/header_sync.rs):\n  {}",
        missing.join("\n  ")
    );
    // The scanner itself must see something, or the check above is vacuous.
    assert_eq!(declared.structs, covered_structs);
    assert!(declared.fields.len() > 50 && declared.consts.len() > 20);
}

#[test]
fn scanner_sees_new_items() {
    let d = scan(
        "pub const A: u32 = 1;\npub const fn f() {}\npub type T = u32;\n\
         pub struct S {\n    /// doc\n    pub x: u32,\n    pub y: Option<fn(a: u8)>,\n}\n\
         impl S {\n    pub const E: u32 = 0;\n}\n",
    );
    assert_eq!(d.consts.into_iter().collect::<Vec<_>>(), ["A"]);
    assert_eq!(d.types.into_iter().collect::<Vec<_>>(), ["T"]);
    assert_eq!(d.fields.into_iter().collect::<Vec<_>>(), ["S.x", "S.y"]);
}

#[test]
fn header_is_plain_c99() {
    let dir = scratch("c99");
    let src = dir.join("c99.c");
    std::fs::write(
        &src,
        "#include \"lookout_plugin.h\"\ntypedef int lk_unused;\n",
    )
    .unwrap();
    let mut cc = compiler(false, &dir);
    cc.args(["-std=c99", "-fsyntax-only"]).arg(&src);
    run(cc, "compiling the header as C99");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn header_has_c_linkage_in_cpp() {
    let dir = scratch("cpp");
    let src = dir.join("entry.cpp");
    let obj = dir.join("entry.o");
    std::fs::write(
        &src,
        "#include \"lookout_plugin.h\"\n\
         static const lk_fns_t fns = {sizeof(lk_fns_t), 0, 0, 0, 0, 0, 0, 0, 0};\n\
         const lk_plugin_t *lookout_plugin_v1(const lk_host_t *host) {\n\
         \x20   static const lk_plugin_t p = {sizeof(lk_plugin_t), LOOKOUT_ABI_MAJOR,\n\
         \x20       LOOKOUT_ABI_MINOR, LK_KIND_LOG, 0, \"x\", \"0\", 0, &fns};\n\
         \x20   (void)host;\n\
         \x20   return &p;\n\
         }\n",
    )
    .unwrap();
    let mut cxx = compiler(true, &dir);
    cxx.args(["-std=c++11", "-c"]).arg(&src).arg("-o").arg(&obj);
    run(cxx, "compiling the header as C++");
    let bytes = std::fs::read(&obj).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        !has(b"_Z17lookout_plugin_v1"),
        "lookout_plugin_v1 got C++ linkage: extern \"C\" guard missing"
    );
    assert!(has(b"lookout_plugin_v1\0"), "entry symbol not found");
    std::fs::remove_dir_all(&dir).unwrap();
}
