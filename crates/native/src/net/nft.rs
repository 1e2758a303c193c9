//! nftables through libnftables, in process: a JSON command document in, nft's JSON
//! output (or its error text) out. No `nft` child; the library talks netlink itself.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint};

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

#[link(name = "nftables")]
unsafe extern "C" {
    fn nft_ctx_new(flags: u32) -> *mut NftCtx;
    fn nft_ctx_free(ctx: *mut NftCtx);
    fn nft_ctx_output_set_flags(ctx: *mut NftCtx, flags: c_uint);
    fn nft_ctx_buffer_output(ctx: *mut NftCtx) -> c_int;
    fn nft_ctx_buffer_error(ctx: *mut NftCtx) -> c_int;
    fn nft_ctx_get_output_buffer(ctx: *mut NftCtx) -> *const c_char;
    fn nft_ctx_get_error_buffer(ctx: *mut NftCtx) -> *const c_char;
    fn nft_run_cmd_from_buffer(ctx: *mut NftCtx, buf: *const c_char) -> c_int;
}

/// One libnftables context, freed on drop. Kept per thread for the thread's life: closing
/// its netlink socket after a transaction that touched a chain waits for the kernel (an
/// RCU grace period: about 15 ms here, three times the whole set-up budget), and its
/// cache of the ruleset is reused (it checks the ruleset's generation on every run).
/// Per thread, because it binds its socket to the network namespace of the thread that
/// makes it (tests run threads in namespaces of their own).
struct Context(*mut NftCtx);

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

impl Context {
    fn new() -> Result<Self, NetError> {
        // SAFETY: nft_ctx_new has no preconditions; null is checked.
        let ctx = unsafe { nft_ctx_new(NFT_CTX_DEFAULT) };
        if ctx.is_null() {
            return Err(internal("nft_ctx_new failed"));
        }
        let context = Self(ctx);
        // SAFETY: a live context made above; buffering makes the library keep its output
        // and errors for us instead of printing them.
        let buffered = unsafe {
            nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
            nft_ctx_buffer_output(ctx) == 0 && nft_ctx_buffer_error(ctx) == 0
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
        unsafe { nft_ctx_free(self.0) };
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
        let rc = unsafe { nft_run_cmd_from_buffer(context.0, input.as_ptr()) };
        // Both read every time: reading one rewinds it for the next run.
        let output = context.text(nft_ctx_get_output_buffer);
        let errors = context.text(nft_ctx_get_error_buffer);
        if rc != 0 {
            return Err(NetError::from_nft(errors.trim()));
        }
        Ok(output)
    })
}
