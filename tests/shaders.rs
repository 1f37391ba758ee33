//! Every shader parses and validates with naga (no adapter needed), and every file in
//! shaders/ is part of a compiled module.

#[test]
fn all_shaders_validate_with_naga() {
    let mut names = Vec::new();
    for (name, source) in flashconv::wgsl_modules() {
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        // Only the f16 variants may use f16 (browsers' software adapters lack it).
        let f16 = source.contains("enable f16;");
        assert_eq!(
            f16,
            name.contains("f16"),
            "{name}: f16 only in f16 variants"
        );
        let mut caps = naga::valid::Capabilities::default();
        if f16 {
            caps |= naga::valid::Capabilities::SHADER_FLOAT16;
            assert!(
                source.contains("array<vec4<f16>>"),
                "{name}: weights not f16"
            );
        }
        let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        if let Err(e) = validator.validate(&module) {
            panic!("{name}: {}", e.emit_to_string(&source));
        }
        assert!(!module.entry_points.is_empty(), "{name} has no entry point");
        names.push(name);
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    for entry in std::fs::read_dir(dir).expect("shaders/") {
        let file = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if file.ends_with(".wgsl") {
            assert!(
                names.iter().any(|n| n.contains(&file)),
                "{file} is not compiled anywhere"
            );
        }
    }
}
