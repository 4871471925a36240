//! Generates the Rust types of Pipecat's protobuf frames from `proto/pipecat_frames.proto`
//! (protox parses it, so no `protoc` is needed on the machine).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/pipecat_frames.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
