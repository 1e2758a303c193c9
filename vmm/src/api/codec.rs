//! The API's codec: prost's encoder, and a decoder whose failures are the client's.
//!
//! tonic's stock `ProstCodec` turns a request that does not decode (garbage, a truncated
//! message, a field of the wrong wire type, a string that is not UTF-8) into INTERNAL,
//! which tells the client nothing and looks like a VMM failure. Here it becomes
//! INVALID_ARGUMENT naming the field, made by [`super::status::undecodable`].

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

use super::status;

/// Used by the generated server (`build.rs`, `codec_path`).
#[derive(Debug)]
pub struct ApiCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for ApiCodec<T, U> {
    fn default() -> Self {
        Self {
            inner: ProstCodec::default(),
        }
    }
}

impl<T, U> Codec for ApiCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ApiDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ApiDecoder(PhantomData)
    }
}

/// Decodes one request message.
#[derive(Debug)]
pub struct ApiDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for ApiDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| status::undecodable(std::any::type_name::<U>(), &e))
    }
}
