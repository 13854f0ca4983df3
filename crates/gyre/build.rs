//! Generates the protobuf types of `proto/*.proto` with prost. The `.proto`
//! files are compiled by protox (pure Rust), so building Gyre needs no
//! `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/client.proto", "proto/control.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let mut cfg = prost_build::Config::new();
    cfg.bytes(["."]);
    cfg.btree_map([".gyre.client.Publication.tags"]);
    cfg.compile_fds(fds)?;
    Ok(())
}
