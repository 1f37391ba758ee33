//! tokenizer_config.json + text through `Tokenizer::from_config_json`, `encode`,
//! `decode` and `parse_ids` (input format: see `flashconv::fuzzing::split_input`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flashconv::fuzzing::tokenizer_input(data);
});
