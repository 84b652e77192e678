//! Does nothing: the package has a build script only so that its `[build-dependencies]`
//! (Cargo.toml says why) take part in the build.
fn main() {}
