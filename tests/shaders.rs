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

/// Every variant translates to the shading languages of the backends this machine cannot
/// run: MSL (Metal), HLSL (DX12) and SPIR-V (Vulkan), entry point by entry point, as
/// wgpu's backends would translate them.
#[test]
fn all_shaders_translate_to_msl_hlsl_and_spirv() {
    use naga::back::{hlsl, msl, spv};
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    for (name, source) in flashconv::wgsl_modules() {
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        let info = Validator::new(ValidationFlags::all(), Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        let msl_opts = msl::Options {
            lang_version: (2, 4),
            ..Default::default()
        };
        let pipeline = msl::PipelineOptions::default();
        let (msl_src, _) = msl::write_string(&module, &info, &msl_opts, &pipeline)
            .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
        assert!(msl_src.contains("kernel"), "{name}: MSL has no kernel");
        let hlsl_opts = hlsl::Options {
            shader_model: hlsl::ShaderModel::V6_2,
            ..Default::default()
        };
        let mut hlsl_src = String::new();
        hlsl::Writer::new(&mut hlsl_src, &hlsl_opts, &Default::default())
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
        assert!(
            hlsl_src.contains("[numthreads("),
            "{name}: HLSL has no compute entry"
        );
        let words = spv::write_vec(&module, &info, &spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
        assert_eq!(
            words.first(),
            Some(&0x0723_0203),
            "{name}: SPIR-V magic number"
        );
    }
}
