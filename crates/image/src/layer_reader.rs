//! Opens a layer blob as a tar stream, whatever its compression: the media type is a
//! hint (docker-archive layers often carry none), the first bytes decide.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{ImageError, Result};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The layer at `path` as an uncompressed tar stream; `on_read` is told how many
/// compressed bytes have been consumed so far (for progress).
pub fn open_layer<'a>(path: &Path, on_read: impl FnMut(u64) + 'a) -> Result<Box<dyn Read + 'a>> {
    let file =
        File::open(path).map_err(|e| ImageError::io(format!("opening layer {}", path.display()), e))?;
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        CountingReader {
            inner: file,
            count: 0,
            on_read,
        },
    );
    let head = reader
        .fill_buf()
        .map_err(|e| ImageError::io("reading a layer", e))?;
    Ok(if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| ImageError::io("starting zstd", e))?,
        )
    } else {
        Box::new(reader)
    })
}

struct CountingReader<R, F> {
    inner: R,
    count: u64,
    on_read: F,
}

impl<R: Read, F: FnMut(u64)> Read for CountingReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        (self.on_read)(self.count);
        Ok(n)
    }
}
