//! `scripts/setup.sh` decides what a fresh machine lacks. Its libclang check must ask for what
//! bindgen loads (`libclang.so`, `libclang-N.so`), not for any file whose name starts with
//! `libclang`: Debian's `libclang-cpp14` (the C++ API) once made it skip `libclang-dev`, and the
//! RocksDB build then failed on a fresh machine.

use std::path::Path;
use std::process::Command;

/// What the script would install with its library search pointed at `dir` alone.
fn packages_needed_with_libraries(dir: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--dry-run")
        .env("JUNBAO_LIB_DIRS", dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "setup.sh --dry-run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

fn folder_with(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::write(dir.path().join(f), b"").unwrap();
    }
    dir
}

#[test]
fn libclang_cpp_alone_is_not_libclang_so_libclang_dev_is_installed() {
    let dir = folder_with(&["libclang-cpp.so.14", "libclang-cpp.so"]);
    assert_eq!(packages_needed_with_libraries(dir.path()), "libclang-dev");
}

#[test]
fn empty_library_folder_needs_libclang_dev() {
    let dir = folder_with(&[]);
    assert_eq!(packages_needed_with_libraries(dir.path()), "libclang-dev");
}

#[test]
fn unversioned_libclang_so_is_enough() {
    let dir = folder_with(&["libclang-cpp.so.14", "libclang.so"]);
    assert_eq!(packages_needed_with_libraries(dir.path()), "nothing");
}

#[test]
fn versioned_libclang_n_so_is_enough() {
    let dir = folder_with(&["libclang-14.so"]);
    assert_eq!(packages_needed_with_libraries(dir.path()), "nothing");
}

#[test]
fn runtime_only_libclang_so_1_is_not_taken_for_the_dev_library() {
    // libclang1-14 ships only versioned names; the check asks for the -dev names.
    let dir = folder_with(&["libclang.so.1", "libclang-14.so.1"]);
    assert_eq!(packages_needed_with_libraries(dir.path()), "libclang-dev");
}
