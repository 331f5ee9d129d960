//! The iden3 binary container shared by `.zkey`, `.wtns` and `.r1cs`: a 4-byte magic, a u32
//! version, a u32 section count, then sections of (u32 id, u64 length, bytes), all
//! little-endian (`@iden3/binfileutils`).
//!
//! Files are memory-mapped rather than read: a proving key is tens to hundreds of megabytes and
//! the prover converts its points straight out of the mapping. Every length read from a file is
//! checked against what is actually there before it is used to slice or to size an allocation.

use std::fs::File;
use std::path::{Path, PathBuf};

use ark_ff::{BigInt, PrimeField};

use crate::{Error, FormatError};

/// A read-only view of a whole file: a memory mapping, or a copy for tiny files (zero-length
/// files cannot be mapped).
pub struct FileBytes {
    path: PathBuf,
    inner: Inner,
}

enum Inner {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `path`.
    pub fn open(path: &Path) -> Result<FileBytes, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let inner = if len < 4096 {
            Inner::Owned(std::fs::read(path).map_err(|e| Error::io(path, e))?)
        } else {
            // SAFETY: the mapping is read-only and private to this process; like every mmap user we
            // rely on the file not being truncated underneath us while it is mapped (proving keys
            // and witnesses are written once, then read).
            Inner::Map(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?)
        };
        Ok(FileBytes {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// Wraps bytes already in memory (tests, network payloads).
    pub fn from_vec(path: impl Into<PathBuf>, bytes: Vec<u8>) -> FileBytes {
        FileBytes {
            path: path.into(),
            inner: Inner::Owned(bytes),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Map(m) => m,
            Inner::Owned(v) => v,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops the mapped pages of `part` (a slice of [`Self::bytes`]) from this process's
    /// resident memory once it has been read: a proving key's points are copied into the
    /// prepared MSMs, and keeping the file's pages too would count them twice at the peak. The
    /// mapping stays valid; a later read faults the same bytes back in from the file. Only
    /// whole 64 KiB pieces inside `part` are dropped (a multiple of every page size in use).
    pub fn release(&self, part: &[u8]) {
        #[cfg(unix)]
        if let Inner::Map(m) = &self.inner {
            const PIECE: usize = 64 * 1024;
            let base = m.as_ptr() as usize;
            let Some(start) = (part.as_ptr() as usize).checked_sub(base) else {
                return;
            };
            let end = start.saturating_add(part.len());
            if end > m.len() {
                return;
            }
            let (lo, hi) = (start.next_multiple_of(PIECE), end / PIECE * PIECE);
            if hi > lo {
                // SAFETY: the mapping is shared and read-only, so dropping its pages discards
                // nothing: the next access reads the same bytes from the file (the assumption
                // every mmap user makes, that the file is not changed underneath, is the same
                // as for the mapping itself). Failure only means the pages stay resident.
                let _ = unsafe {
                    m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, lo, hi - lo)
                };
            }
        }
        #[cfg(not(unix))]
        let _ = part;
    }
}

/// One section's place in the file.
#[derive(Clone, Copy, Debug)]
pub struct Section {
    pub id: u32,
    pub offset: usize,
    pub len: usize,
}

/// The section table of a container, with its bytes.
pub struct BinFile<'a> {
    pub data: &'a [u8],
    pub version: u32,
    pub sections: Vec<Section>,
}

impl<'a> BinFile<'a> {
    /// Parses the header and the section table; checks that every section lies inside the file.
    pub fn parse(
        data: &'a [u8],
        magic: &'static str,
        max_version: u32,
    ) -> Result<BinFile<'a>, FormatError> {
        let mut c = Cursor::new(data, 0, "file header");
        let m = c.bytes(4)?;
        if m != magic.as_bytes() {
            return Err(FormatError::BadMagic {
                expected: magic,
                found: String::from_utf8_lossy(m).into_owned(),
            });
        }
        let version = c.u32()?;
        if version == 0 || version > max_version {
            return Err(FormatError::UnsupportedVersion {
                what: magic,
                version,
            });
        }
        let n = c.u32()?;
        let mut sections = Vec::new();
        for i in 0..n {
            c.what = "section header";
            let id = c.u32()?;
            let len = c.u64()?;
            let offset = c.pos;
            if len > (data.len() - offset) as u64 {
                return Err(FormatError::Truncated {
                    what: format!("section {id} (#{i})"),
                    offset: offset as u64,
                    need: len,
                    have: data.len() as u64,
                });
            }
            let len = len as usize;
            sections.push(Section { id, offset, len });
            c.pos = offset + len;
        }
        Ok(BinFile {
            data,
            version,
            sections,
        })
    }

    /// The one section with this id.
    pub fn section(&self, id: u32) -> Result<Section, FormatError> {
        let mut found = self.sections.iter().filter(|s| s.id == id);
        let s = *found.next().ok_or(FormatError::MissingSection(id))?;
        if found.next().is_some() {
            return Err(FormatError::DuplicateSection(id));
        }
        Ok(s)
    }

    /// The bytes of the one section with this id, which must be exactly `expected` long.
    pub fn section_exact(
        &self,
        id: u32,
        what: &'static str,
        expected: u64,
    ) -> Result<&'a [u8], FormatError> {
        let s = self.section(id)?;
        if s.len as u64 != expected {
            return Err(FormatError::SectionSize {
                id,
                what,
                expected,
                actual: s.len as u64,
            });
        }
        Ok(&self.data[s.offset..s.offset + s.len])
    }

    /// A cursor over the one section with this id.
    pub fn cursor(&self, id: u32, what: &'static str) -> Result<Cursor<'a>, FormatError> {
        let s = self.section(id)?;
        Ok(Cursor::new(
            &self.data[s.offset..s.offset + s.len],
            s.offset,
            what,
        ))
    }
}

/// Bounds-checked little-endian reads from a section.
pub struct Cursor<'a> {
    buf: &'a [u8],
    /// Offset of `buf` in the file, for messages.
    base: usize,
    pub pos: usize,
    pub what: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], base: usize, what: &'static str) -> Self {
        Cursor {
            buf,
            base,
            pos: 0,
            what,
        }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if n > self.remaining() {
            return Err(FormatError::Truncated {
                what: self.what.to_string(),
                offset: (self.base + self.pos) as u64,
                need: n as u64,
                have: (self.base + self.buf.len()) as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, FormatError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Checks that the section was consumed exactly.
    pub fn finish(&self, id: u32) -> Result<(), FormatError> {
        if self.pos != self.buf.len() {
            return Err(FormatError::SectionSize {
                id,
                what: self.what,
                expected: self.pos as u64,
                actual: self.buf.len() as u64,
            });
        }
        Ok(())
    }
}

/// 32 little-endian bytes as four u64 limbs, and a canonical element from them (the packed
/// points' readers, shared).
pub use backends::prove::packed::{canonical, limbs_le};

/// True when the 32 little-endian bytes equal the modulus of `F`.
pub fn is_modulus<F: PrimeField<BigInt = BigInt<4>>>(b: &[u8]) -> bool {
    b.len() == 32 && limbs_le(b) == F::MODULUS.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident KiB of this process's mapping of `path` (`/proc/self/smaps`, Linux).
    fn mapped_kib(path: &Path) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let name = path.to_string_lossy();
        let mut lines = smaps.lines().skip_while(|l| !l.ends_with(name.as_ref()));
        lines.next()?;
        let rss = lines.find(|l| l.starts_with("Rss:"))?;
        rss["Rss:".len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// Released pages read back the same bytes (from the file), and a slice that is not part
    /// of the mapping is left alone.
    #[test]
    fn released_pages_read_back_unchanged() {
        let path = std::env::temp_dir().join(format!("rigworker-release-{}", std::process::id()));
        let data: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        std::fs::write(&path, &data).expect("write");
        let f = FileBytes::open(&path).expect("map");
        assert!(matches!(f.inner, Inner::Map(_)));
        assert_eq!(f.bytes(), &data[..]);
        // An unaligned middle piece, then everything.
        f.release(&f.bytes()[1000..700_000]);
        assert_eq!(f.bytes(), &data[..]);
        // Everything: the mapping's resident size drops to nothing, then the bytes come back.
        assert!(
            mapped_kib(&path).unwrap_or(0) >= 900,
            "touched: {:?}",
            mapped_kib(&path)
        );
        f.release(f.bytes());
        if cfg!(target_os = "linux") {
            assert_eq!(mapped_kib(&path), Some(0), "resident after the release");
        }
        assert_eq!(f.bytes(), &data[..]);
        let elsewhere = vec![0u8; 1 << 17];
        f.release(&elsewhere);
        assert_eq!(f.bytes(), &data[..]);
        drop(f);
        let _ = std::fs::remove_file(&path);
    }
}
