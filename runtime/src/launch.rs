//! A service's life: [`launch`] makes a context, creates the module's instance in it and
//! hands the queue to the workers; [`kill`] retires it (a worker releases it later).

use crate::context::{Context, InitFailed};
use crate::{context, logging, module};

/// `LAUNCH`: creates a service of `module` with `param`. None when the module is unknown
/// or its init fails.
pub fn launch(name: &str, param: Option<&str>) -> Option<u32> {
    let create = module::find(name)?;
    let Some(ctx) = Context::register() else {
        logging::error(
            0,
            format!("error: launch {name} FAILED: no free service handle"),
        );
        return None;
    };
    match create(&ctx, param) {
        Ok(service) => {
            *ctx.service.lock() = Some(service);
            let handle = ctx.handle;
            // The queue was born scheduled: hand it to the workers now that init is done.
            context::scheduled().push(ctx);
            logging::error(handle, format!("LAUNCH {} {}", name, param.unwrap_or("")));
            Some(handle)
        }
        Err(InitFailed) => {
            logging::error(ctx.handle, format!("error: launch {name} FAILED"));
            if let Some(ctx) = context::handles().retire(ctx.handle) {
                ctx.release();
            }
            None
        }
    }
}

/// Retires `handle` (EXIT/KILL/ABORT); a worker releases it.
pub fn kill(handle: u32) {
    Context::retire(handle);
}
