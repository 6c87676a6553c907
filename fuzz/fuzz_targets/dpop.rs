#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshguard_fuzz::dpop(data));
