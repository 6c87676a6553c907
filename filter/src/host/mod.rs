//! The proxy-wasm glue: RootContext, HttpContext, properties. The only code that calls proxy-wasm.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    start();
}}

/// Registers meshguard's root context with the proxy-wasm SDK (the module's `_initialize`).
pub fn start() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(MeshguardRoot) });
}

/// Placeholder root (replaced by the filter issue).
struct MeshguardRoot;

impl Context for MeshguardRoot {}

impl RootContext for MeshguardRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MeshguardHttp))
    }
}

struct MeshguardHttp;

impl Context for MeshguardHttp {}
impl HttpContext for MeshguardHttp {}
