//! nftables through libnftables, in process: a JSON command document in, nft's JSON
//! output (or its error text) out. No `nft` child; the library talks netlink itself.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint};
use std::sync::OnceLock;

use super::{NetCode, NetError};

fn internal(text: &str) -> NetError {
    NetError::Nft {
        code: NetCode::Internal,
        text: text.into(),
    }
}

#[repr(C)]
struct NftCtx {
    _opaque: [u8; 0],
}

const NFT_CTX_DEFAULT: u32 = 0;
const NFT_CTX_OUTPUT_HANDLE: c_uint = 1 << 3;
const NFT_CTX_OUTPUT_JSON: c_uint = 1 << 4;

/// libnftables, as the Debian package libnftables1 installs it.
const LIBRARY: &str = "libnftables.so.1";

/// libnftables' entry points, loaded at the first nftables call rather than linked: the
/// addon then loads on a host without nftables (images and terminals need none of it),
/// and a network set-up there fails saying which package is missing.
struct Api {
    ctx_new: unsafe extern "C" fn(u32) -> *mut NftCtx,
    ctx_free: unsafe extern "C" fn(*mut NftCtx),
    output_set_flags: unsafe extern "C" fn(*mut NftCtx, c_uint),
    buffer_output: unsafe extern "C" fn(*mut NftCtx) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut NftCtx) -> c_int,
    output_buffer: unsafe extern "C" fn(*mut NftCtx) -> *const c_char,
    error_buffer: unsafe extern "C" fn(*mut NftCtx) -> *const c_char,
    run_cmd_from_buffer: unsafe extern "C" fn(*mut NftCtx, *const c_char) -> c_int,
    /// Never unloaded: the function pointers above point into it.
    _library: libloading::Library,
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn api() -> Result<&'static Api, NetError> {
    API.get_or_init(|| load(LIBRARY))
        .as_ref()
        .map_err(|text| NetError::Nft {
            code: NetCode::FailedPrecondition,
            text: text.clone(),
        })
}

fn load(name: &str) -> Result<Api, String> {
    let missing = |e: libloading::Error| {
        format!(
            "nftables' library {name} cannot be loaded ({e}): install the Debian package libnftables1 (scripts/setup does)"
        )
    };
    // SAFETY: loading libnftables runs its constructors, which have no preconditions.
    let library = unsafe { libloading::Library::new(name) }.map_err(missing)?;
    // SAFETY: each symbol is looked up with the signature libnftables (1.0) declares in
    // <nftables/libnftables.h>; the pointers stay valid while `library` is loaded (forever).
    unsafe {
        Ok(Api {
            ctx_new: *library.get(b"nft_ctx_new\0").map_err(missing)?,
            ctx_free: *library.get(b"nft_ctx_free\0").map_err(missing)?,
            output_set_flags: *library.get(b"nft_ctx_output_set_flags\0").map_err(missing)?,
            buffer_output: *library.get(b"nft_ctx_buffer_output\0").map_err(missing)?,
            buffer_error: *library.get(b"nft_ctx_buffer_error\0").map_err(missing)?,
            output_buffer: *library.get(b"nft_ctx_get_output_buffer\0").map_err(missing)?,
            error_buffer: *library.get(b"nft_ctx_get_error_buffer\0").map_err(missing)?,
            run_cmd_from_buffer: *library.get(b"nft_run_cmd_from_buffer\0").map_err(missing)?,
            _library: library,
        })
    }
}

/// One libnftables context, freed on drop. Kept per thread for the thread's life: closing
/// its netlink socket after a transaction that touched a chain waits for the kernel (an
/// RCU grace period: about 15 ms here, three times the whole set-up budget), and its
/// cache of the ruleset is reused (it checks the ruleset's generation on every run).
/// Per thread, because it binds its socket to the network namespace of the thread that
/// makes it (tests run threads in namespaces of their own).
struct Context(*mut NftCtx, &'static Api);

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

impl Context {
    fn new() -> Result<Self, NetError> {
        let api = api()?;
        // SAFETY: nft_ctx_new has no preconditions; null is checked.
        let ctx = unsafe { (api.ctx_new)(NFT_CTX_DEFAULT) };
        if ctx.is_null() {
            return Err(internal("nft_ctx_new failed"));
        }
        let context = Self(ctx, api);
        // SAFETY: a live context made above; buffering makes the library keep its output
        // and errors for us instead of printing them.
        let buffered = unsafe {
            (api.output_set_flags)(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
            (api.buffer_output)(ctx) == 0 && (api.buffer_error)(ctx) == 0
        };
        if !buffered {
            return Err(internal("cannot buffer libnftables output"));
        }
        Ok(context)
    }

    fn text(&self, buffer: unsafe extern "C" fn(*mut NftCtx) -> *const c_char) -> String {
        // SAFETY: the context is live and buffered; the library returns a NUL-terminated
        // string it owns (or null), valid until the next run, copied out at once.
        unsafe {
            let ptr = buffer(self.0);
            if ptr.is_null() {
                String::new()
            } else {
                CStr::from_ptr(ptr).to_string_lossy().into_owned()
            }
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was made by nft_ctx_new and is freed once, here.
        unsafe { (self.1.ctx_free)(self.0) };
    }
}

/// Runs a JSON command document (`{"nftables": [...]}`) as one transaction and returns
/// nft's JSON output ("" when the commands print nothing).
pub fn run(commands: &str) -> Result<String, NetError> {
    if !commands.trim_start().starts_with('{') {
        return Err(NetError::InvalidArgument {
            field: "commands".into(),
            problem: "must be an nftables JSON document ({\"nftables\": [...]})".into(),
        });
    }
    let input = CString::new(commands).map_err(|_| NetError::InvalidArgument {
        field: "commands".into(),
        problem: "contains a NUL byte".into(),
    })?;
    CONTEXT.with_borrow_mut(|slot| {
        let context = match slot {
            Some(context) => context,
            None => slot.insert(Context::new()?),
        };
        // SAFETY: a live context and a NUL-terminated command buffer that outlives the call.
        let rc = unsafe { (context.1.run_cmd_from_buffer)(context.0, input.as_ptr()) };
        // Both read every time: reading one rewinds it for the next run.
        let output = context.text(context.1.output_buffer);
        let errors = context.text(context.1.error_buffer);
        if rc != 0 {
            return Err(NetError::from_nft(errors.trim()));
        }
        Ok(output)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_library_is_an_error_naming_the_package() {
        let Err(text) = super::load("libnftables-not-installed.so.1") else {
            panic!("a library that does not exist loaded");
        };
        assert!(
            text.contains("libnftables-not-installed.so.1") && text.contains("libnftables1"),
            "{text}"
        );
    }

    #[test]
    fn the_installed_library_has_every_entry_point() {
        super::load(super::LIBRARY).expect("scripts/setup installs libnftables1");
    }
}
