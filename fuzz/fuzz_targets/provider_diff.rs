#![no_main]
#[path = "../src/provider_diff.rs"]
mod provider_diff;
libfuzzer_sys::fuzz_target!(|data: &[u8]| provider_diff::provider_diff(data));
