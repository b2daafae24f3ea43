//! Hoist's integration tests: real HTTP on 127.0.0.1 against a SigV4-verifying S3 store
//! (s3s-fs), a scripted faulty endpoint, presign backends, the real OS keychain and the CLI.

mod support;

mod architecture;

mod backend_mode;
mod checksums;
mod cli;
mod companion;
mod desktop;
mod encrypted;
mod faults;
mod hostile_names;
mod keychain;
mod local_files;
mod localstack;
mod multipart;
mod network;
mod properties;
mod self_sign;
mod sign_in;
