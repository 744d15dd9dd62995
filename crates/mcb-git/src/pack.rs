//! A large package's blobs written as one pack with its index, where a small one writes a
//! loose file per blob. A Moodle core is about 30,000 blobs; as loose objects each costs a
//! temporary file, a rename and a directory entry, which made writing them the larger half
//! of a realise from a binary cache. The pack holds whole objects (no deltas), so it is
//! written in one pass as the blobs are compressed; git and gix read it as any other pack,
//! and gc's repack folds it in with the rest.
//!
//! Format: git's pack version 2 and pack index version 2 (`gitformat-pack(5)`).

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha1::Digest;

/// Object type 3 of a pack: a blob.
const BLOB: u8 = 3;

/// One blob as a pack entry: its header (type and size) and its zlib stream, with the
/// CRC-32 of both that the index records.
pub(crate) struct PackedBlob {
    data: Vec<u8>,
    crc32: u32,
}

impl PackedBlob {
    /// `deflate` is one thread's compressor, reset after each blob: a new one per blob
    /// would allocate and clear its tables 30,000 times for a core.
    pub(crate) fn of(bytes: &[u8], deflate: &mut flate2::Compress) -> io::Result<PackedBlob> {
        let mut data = Vec::with_capacity(bytes.len() + bytes.len() / 8 + 64);
        let mut size = bytes.len() as u64;
        let mut first = (BLOB << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size > 0 {
            data.push(first | 0x80);
            first = (size & 0x7f) as u8;
            size >>= 7;
        }
        data.push(first);
        deflate.reset();
        loop {
            let read = deflate.total_in() as usize;
            let status = deflate
                .compress_vec(&bytes[read..], &mut data, flate2::FlushCompress::Finish)
                .map_err(io::Error::other)?;
            match status {
                flate2::Status::StreamEnd => break,
                _ => data.reserve(data.capacity().max(64)),
            }
        }
        let crc32 = crc32fast::hash(&data);
        Ok(PackedBlob { data, crc32 })
    }
}

/// A compressor for [`PackedBlob::of`]: zlib at level 1, as gix writes loose objects
/// (what a realise waits for).
pub(crate) fn deflater() -> flate2::Compress {
    flate2::Compress::new(flate2::Compression::new(1), true)
}

/// A pack being written into `objects/pack`: it becomes visible to git only when its
/// index is renamed into place, the last step of [`PackWriter::finish`].
pub(crate) struct PackWriter {
    dir: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    offset: u64,
    entries: Vec<(gix::ObjectId, u64, u32)>,
    seen: HashSet<gix::ObjectId>,
}

impl PackWriter {
    /// Starts a pack in `objects/pack` of the repository whose objects are in `objects`.
    pub(crate) fn new(objects: &Path) -> io::Result<PackWriter> {
        let dir = objects.join("pack");
        fs::create_dir_all(&dir)?;
        let file = tempfile::Builder::new()
            .prefix("tmp_pack_")
            .tempfile_in(&dir)?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        // The header's object count is written at the end, when it is known.
        file.write_all(&[0; 12])?;
        Ok(PackWriter {
            dir,
            file,
            offset: 12,
            entries: Vec::new(),
            seen: HashSet::new(),
        })
    }

    /// Whether blob `id` is in this pack already.
    pub(crate) fn contains(&self, id: &gix::ObjectId) -> bool {
        self.seen.contains(id)
    }

    /// Appends blob `id`; a second copy of the same blob is left out.
    pub(crate) fn add(&mut self, id: gix::ObjectId, blob: &PackedBlob) -> io::Result<()> {
        if !self.seen.insert(id) {
            return Ok(());
        }
        self.file.write_all(&blob.data)?;
        self.entries.push((id, self.offset, blob.crc32));
        self.offset += blob.data.len() as u64;
        Ok(())
    }

    /// Writes the header, the trailing checksum and the index, and renames both into place
    /// (the pack first, its index last). Nothing is left behind when no blob was added.
    pub(crate) fn finish(self) -> io::Result<()> {
        let PackWriter {
            dir,
            file,
            mut entries,
            ..
        } = self;
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        if entries.is_empty() {
            return Ok(());
        }
        let count = u32::try_from(entries.len())
            .map_err(|_| io::Error::other("more objects than a pack holds"))?;
        let f = file.as_file_mut();
        f.seek(SeekFrom::Start(0))?;
        let mut header = Vec::with_capacity(12);
        header.extend_from_slice(b"PACK");
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&count.to_be_bytes());
        f.write_all(&header)?;
        // The checksum covers the whole pack as written, header included.
        f.seek(SeekFrom::Start(0))?;
        let mut hasher = sha1::Sha1::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let checksum: [u8; 20] = hasher.finalize().into();
        f.seek(SeekFrom::End(0))?;
        f.write_all(&checksum)?;
        let name = format!("pack-{}", hex(&checksum));

        entries.sort_unstable_by_key(|e| e.0);
        let index = index_v2(&entries, &checksum);

        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o444))?;
        let pack = dir.join(format!("{name}.pack"));
        file.persist(&pack).map_err(|e| e.error)?;
        let mut idx = tempfile::Builder::new()
            .prefix("tmp_idx_")
            .tempfile_in(&dir)?;
        idx.write_all(&index)?;
        fs::set_permissions(idx.path(), fs::Permissions::from_mode(0o444))?;
        idx.persist(dir.join(format!("{name}.idx")))
            .map_err(|e| e.error)?;
        Ok(())
    }
}

/// A pack index, version 2, of `entries` (sorted by id): fan-out table, ids, CRC-32s,
/// offsets (those past 2 GiB in a table of their own), the pack's checksum, its own.
fn index_v2(entries: &[(gix::ObjectId, u64, u32)], pack_checksum: &[u8; 20]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 1024 + entries.len() * 28 + 40);
    out.extend_from_slice(&[0xff, b't', b'O', b'c']);
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in entries {
        fanout[id.as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for n in fanout {
        total += n;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in entries {
        out.extend_from_slice(id.as_bytes());
    }
    for (_, _, crc) in entries {
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for (_, offset, _) in entries {
        if *offset < 0x8000_0000 {
            out.extend_from_slice(&(*offset as u32).to_be_bytes());
        } else {
            out.extend_from_slice(&(0x8000_0000 | large.len() as u32).to_be_bytes());
            large.push(*offset);
        }
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(pack_checksum);
    let own: [u8; 20] = sha1::Sha1::digest(&out).into();
    out.extend_from_slice(&own);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
