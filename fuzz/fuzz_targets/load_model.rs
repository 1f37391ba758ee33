//! config.json + safetensors bytes through `Config::parse` and
//! `Model::from_safetensors` (input format: see `flashconv::fuzzing::split_input`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = flashconv::fuzzing::load_model_input(data);
});
