//! flashconv's desktop example: an eframe/egui window that generates text from the bundled
//! Hyena model on the wgpu device egui renders with (one device, one queue).
//!
//! ```sh
//! cargo run --release --manifest-path examples/desktop/Cargo.toml
//! # unattended: generate once, save a screenshot, close; exit status 1 if no tokens
//! cargo run --release --manifest-path examples/desktop/Cargo.toml -- \
//!     --auto-prompt "The " --screenshot shot.png --exit-after
//! ```

#![warn(missing_docs)]

mod app;
mod worker;

use app::{AutoRun, DesktopApp, Outcome, Settings};
use clap::Parser;
use eframe::{egui, egui_wgpu};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Generate text from flashconv's bundled Hyena model in a window.
#[derive(Parser, Debug)]
#[command(version, args_override_self = true)]
struct Args {
    /// Initial prompt.
    #[arg(long, default_value = flashconv::bundled::DEFAULT_PROMPT)]
    prompt: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Generate from this prompt as soon as the model is loaded (unattended runs).
    #[arg(long)]
    auto_prompt: Option<String>,
    /// With --auto-prompt: save a PNG screenshot of the window when generation ends.
    #[arg(long, requires = "auto_prompt")]
    screenshot: Option<PathBuf>,
    /// With --auto-prompt: close the window after that; the exit status is 1 unless
    /// tokens were generated (and the screenshot saved) without an error.
    #[arg(long, requires = "auto_prompt")]
    exit_after: bool,
}

/// The device egui creates: the adapter's own limits (flashconv's kernels need 6
/// storage buffers per stage, 16 KiB of workgroup memory, 256 invocations; larger
/// storage bindings let its history buffers stay in one group) and the optional
/// features flashconv uses when present.
fn wgpu_options() -> egui_wgpu::WgpuConfiguration {
    let setup = egui_wgpu::WgpuSetupCreateNew {
        device_descriptor: Arc::new(|adapter: &wgpu::Adapter| wgpu::DeviceDescriptor {
            label: Some("flashconv-desktop"),
            required_features: adapter.features() & flashconv::device::wanted_features(),
            required_limits: adapter.limits(),
            ..Default::default()
        }),
        native_adapter_selector: std::env::var("WGPU_ADAPTER_NAME").ok().map(adapter_by_name),
        ..egui_wgpu::WgpuSetupCreateNew::without_display_handle()
    };
    egui_wgpu::WgpuConfiguration {
        wgpu_setup: egui_wgpu::WgpuSetup::CreateNew(setup),
        ..Default::default()
    }
}

/// Picks the first adapter whose name contains `want` (case-insensitive) and that can
/// draw to the window, as the CLI honours `WGPU_ADAPTER_NAME`.
fn adapter_by_name(want: String) -> egui_wgpu::NativeAdapterSelectorMethod {
    let want = want.to_lowercase();
    Arc::new(move |adapters, surface| {
        adapters
            .iter()
            .find(|a| {
                a.get_info().name.to_lowercase().contains(&want)
                    && surface.is_none_or(|s| a.is_surface_supported(s))
            })
            .cloned()
            .ok_or_else(|| {
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                format!(
                    "no adapter matching WGPU_ADAPTER_NAME={want:?} can draw the window \
                     (adapters: {})",
                    names.join(", ")
                )
            })
    })
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let settings = Settings {
        prompt: args.auto_prompt.clone().unwrap_or(args.prompt),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        seed: args.seed,
    };
    let auto = args.auto_prompt.map(|prompt| AutoRun {
        prompt,
        screenshot: args.screenshot.clone(),
        exit_after: args.exit_after,
    });
    let unattended = auto.is_some();
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("flashconv desktop")
            .with_inner_size([960.0, 640.0]),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: wgpu_options(),
        ..Default::default()
    };
    let app_outcome = outcome.clone();
    let result = eframe::run_native(
        "flashconv desktop",
        options,
        Box::new(move |cc| Ok(Box::new(DesktopApp::new(cc, settings, auto, app_outcome)))),
    );
    if let Err(e) = result {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if !unattended {
        return ExitCode::SUCCESS;
    }
    let o = match outcome.lock() {
        Ok(o) => o.clone(),
        Err(_) => return ExitCode::FAILURE,
    };
    println!(
        "{} tokens generated ({:.2} token/s){}",
        o.tokens,
        o.tokens_per_second,
        if o.screenshot_saved {
            ", screenshot saved"
        } else {
            ""
        }
    );
    let failed =
        o.tokens == 0 || o.error.is_some() || (args.screenshot.is_some() && !o.screenshot_saved);
    if let Some(e) = &o.error {
        eprintln!("error: {e}");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
