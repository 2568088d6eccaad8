//! SPDY/3.1 framing, as kubectl's port forwarding speaks it (client-go's `httpstream/spdy`
//! over `github.com/moby/spdystream`, whose framer follows the SPDY/3 draft,
//! `draft-mbelshe-httpbis-spdy-00`).
//!
//! Every frame starts with eight bytes. A control frame: the control bit, a 15-bit version
//! (3), a 16-bit type, 8 bits of flags and a 24-bit length. A data frame: a zero bit, a
//! 31-bit stream id, 8 bits of flags and a 24-bit length. Header blocks (SYN_STREAM,
//! SYN_REPLY, HEADERS) are one zlib stream per direction and connection, each block ending
//! in a sync flush, and the stream is primed with SPDY/3's fixed dictionary. Decoding and
//! encoding are pure: the session that uses them lives in `portforward.rs`.

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// `FLAG_FIN`: the sender's last frame on this stream (data and control frames).
pub const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status `PROTOCOL_ERROR`.
pub const PROTOCOL_ERROR: u32 = 1;
/// RST_STREAM status `REFUSED_STREAM`.
pub const REFUSED_STREAM: u32 = 3;
/// RST_STREAM status `CANCEL` (what spdystream's `Stream.Reset` sends).
pub const CANCEL: u32 = 5;
/// RST_STREAM status `STREAM_IN_USE`.
pub const STREAM_IN_USE: u32 = 8;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// A frame that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdyError(pub String);

impl std::fmt::Display for SpdyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SPDY protocol error: {}", self.0)
    }
}

fn error(message: impl Into<String>) -> SpdyError {
    SpdyError(message.into())
}

/// A header block's name/value pairs, names lower-case, one pair per value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One SPDY/3 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    /// `(flags, id, value)` per entry.
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    Data {
        stream: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type SPDY/3 does not define: the draft says to ignore it.
    Unknown {
        kind: u16,
    },
}

/// Header names of SPDY/3's compression dictionary, each stored as a 4-byte big-endian
/// length followed by the name.
const DICTIONARY_WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail, stored as plain text after the words.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// SPDY/3's zlib dictionary (1423 bytes; zlib names it by its Adler-32, `0xe3c6a7c2`).
pub fn dictionary() -> &'static [u8] {
    static DICTIONARY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICTIONARY.get_or_init(|| {
        let mut bytes = Vec::with_capacity(1423);
        for word in DICTIONARY_WORDS {
            bytes.extend_from_slice(&(word.len() as u32).to_be_bytes());
            bytes.extend_from_slice(word.as_bytes());
        }
        bytes.extend_from_slice(DICTIONARY_TAIL.as_bytes());
        bytes
    })
}

/// Bounds-checked big-endian reads from a frame's payload.
struct Payload<'a> {
    bytes: &'a [u8],
    kind: &'static str,
}

impl Payload<'_> {
    fn u32_at(&self, offset: usize) -> Result<u32, SpdyError> {
        self.bytes
            .get(offset..offset + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| error(format!("{} frame is truncated", self.kind)))
    }

    fn rest(&self, offset: usize) -> Result<&[u8], SpdyError> {
        self.bytes
            .get(offset..)
            .ok_or_else(|| error(format!("{} frame is truncated", self.kind)))
    }
}

/// Reads frames from one direction of a connection; owns that direction's zlib stream.
pub struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            inflate: Decompress::new(true),
        }
    }

    /// The next whole frame at the front of `buffer`, removed from it; `None` until one has
    /// fully arrived.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buffer.len() < 8 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([0, buffer[5], buffer[6], buffer[7]]) as usize;
        if buffer.len() < 8 + length {
            return Ok(None);
        }
        let head = buffer.split_to(8);
        let body = buffer.split_to(length).freeze();
        let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let flags = head[4];
        if first & 0x8000_0000 == 0 {
            let stream = first & 0x7fff_ffff;
            if stream == 0 {
                return Err(error("data frame on stream 0"));
            }
            return Ok(Some(Frame::Data {
                stream,
                flags,
                data: body,
            }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(error(format!("unsupported version {version}")));
        }
        self.control((first & 0xffff) as u16, flags, &body)
            .map(Some)
    }

    /// The error for bytes left over when the connection ends mid-frame.
    pub fn finish(buffer: &BytesMut) -> Result<(), SpdyError> {
        if buffer.is_empty() {
            Ok(())
        } else {
            Err(error(format!(
                "connection ended inside a frame ({} bytes left)",
                buffer.len()
            )))
        }
    }

    fn control(&mut self, kind: u16, flags: u8, body: &[u8]) -> Result<Frame, SpdyError> {
        let name = match kind {
            SYN_STREAM => "SYN_STREAM",
            SYN_REPLY => "SYN_REPLY",
            RST_STREAM => "RST_STREAM",
            SETTINGS => "SETTINGS",
            PING => "PING",
            GOAWAY => "GOAWAY",
            HEADERS => "HEADERS",
            WINDOW_UPDATE => "WINDOW_UPDATE",
            _ => return Ok(Frame::Unknown { kind }),
        };
        let payload = Payload {
            bytes: body,
            kind: name,
        };
        let stream_id = |offset| payload.u32_at(offset).map(|v| v & 0x7fff_ffff);
        let nonzero = |stream: u32| {
            if stream == 0 {
                Err(error(format!("{name} frame on stream 0")))
            } else {
                Ok(stream)
            }
        };
        Ok(match kind {
            SYN_STREAM => {
                let stream = nonzero(stream_id(0)?)?;
                let associated = stream_id(4)?;
                let headers = self.headers(payload.rest(10)?)?;
                Frame::SynStream {
                    stream,
                    associated,
                    // The priority is the top 3 bits of byte 8; byte 9 is the unused slot.
                    priority: body[8] >> 5,
                    flags,
                    headers,
                }
            }
            SYN_REPLY | HEADERS => {
                let stream = nonzero(stream_id(0)?)?;
                let headers = self.headers(payload.rest(4)?)?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream,
                        flags,
                        headers,
                    }
                }
            }
            RST_STREAM => Frame::RstStream {
                stream: nonzero(stream_id(0)?)?,
                status: payload.u32_at(4)?,
            },
            SETTINGS => {
                let count = payload.u32_at(0)? as usize;
                if body.len() < 4 || (body.len() - 4) / 8 < count {
                    return Err(error(format!(
                        "SETTINGS frame is truncated ({count} entries)"
                    )));
                }
                let entries = (0..count)
                    .map(|i| {
                        let flag_id = payload.u32_at(4 + 8 * i)?;
                        let value = payload.u32_at(8 + 8 * i)?;
                        Ok(((flag_id >> 24) as u8, flag_id & 0x00ff_ffff, value))
                    })
                    .collect::<Result<_, SpdyError>>()?;
                Frame::Settings { flags, entries }
            }
            PING => Frame::Ping {
                id: payload.u32_at(0)?,
            },
            GOAWAY => Frame::GoAway {
                last_good: stream_id(0)?,
                status: payload.u32_at(4)?,
            },
            _ => Frame::WindowUpdate {
                stream: stream_id(0)?,
                delta: payload.u32_at(4)? & 0x7fff_ffff,
            },
        })
    }

    /// Inflates one header block (the next piece of this direction's zlib stream) and parses
    /// it.
    fn headers(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let mut raw = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut consumed = 0;
        loop {
            if raw.capacity() - raw.len() < 64 {
                raw.reserve(raw.capacity().max(256));
            }
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let result = self.inflate.decompress_vec(
                &compressed[consumed..],
                &mut raw,
                FlushDecompress::Sync,
            );
            consumed += (self.inflate.total_in() - in_before) as usize;
            let progressed =
                self.inflate.total_in() != in_before || self.inflate.total_out() != out_before;
            match result {
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| error(format!("header block dictionary: {e}")))?;
                }
                Err(e) => return Err(error(format!("header block does not inflate: {e}"))),
                Ok(_) if consumed == compressed.len() && raw.len() < raw.capacity() => break,
                Ok(_) if !progressed && consumed == compressed.len() => break,
                Ok(_) if !progressed => {
                    return Err(error("header block does not inflate"));
                }
                Ok(_) => {}
            }
        }
        parse_header_block(&raw)
    }
}

/// Parses an inflated header block: a 32-bit count, then per pair a 32-bit length and name,
/// a 32-bit length and value (several values joined by NUL).
pub fn parse_header_block(raw: &[u8]) -> Result<Headers, SpdyError> {
    let payload = Payload {
        bytes: raw,
        kind: "header block",
    };
    let count = payload.u32_at(0)? as usize;
    // Each pair takes at least 8 bytes: refuse counts the block cannot hold before allocating.
    if (raw.len() - 4) / 8 < count {
        return Err(error(format!(
            "header block is truncated ({count} pairs in {} bytes)",
            raw.len()
        )));
    }
    let mut offset = 4;
    let mut text = || -> Result<String, SpdyError> {
        let length = payload.u32_at(offset)? as usize;
        let bytes = raw
            .get(offset + 4..offset + 4 + length)
            .ok_or_else(|| error("header block is truncated"))?;
        offset += 4 + length;
        String::from_utf8(bytes.to_vec()).map_err(|_| error("header block is not UTF-8"))
    };
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let name = text()?.to_ascii_lowercase();
        let values = text()?;
        for value in values.split('\0') {
            pairs.push((name.clone(), value.to_string()));
        }
    }
    Ok(Headers(pairs))
}

/// Serialises an uncompressed header block, joining repeated names' values with NUL.
pub fn header_block(headers: &Headers) -> Vec<u8> {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in &headers.0 {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let mut raw = Vec::new();
    raw.extend_from_slice(&(names.len() as u32).to_be_bytes());
    for name in names {
        let values: Vec<&str> = headers
            .0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        let value = values.join("\0");
        raw.extend_from_slice(&(name.len() as u32).to_be_bytes());
        raw.extend_from_slice(name.to_ascii_lowercase().as_bytes());
        raw.extend_from_slice(&(value.len() as u32).to_be_bytes());
        raw.extend_from_slice(value.as_bytes());
    }
    raw
}

/// Writes frames for one direction of a connection; owns that direction's zlib stream.
pub struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        let mut deflate = Compress::new(Compression::best(), true);
        // A fresh stream takes a dictionary: this cannot fail.
        let _ = deflate.set_dictionary(dictionary());
        Encoder { deflate }
    }

    /// The frame's bytes on the wire.
    pub fn encode(&mut self, frame: &Frame) -> Result<Vec<u8>, SpdyError> {
        let (kind, flags, body) = match frame {
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                if *stream == 0 || *stream > 0x7fff_ffff || data.len() > 0x00ff_ffff {
                    return Err(error("data frame with an invalid stream or length"));
                }
                let mut bytes = Vec::with_capacity(8 + data.len());
                bytes.extend_from_slice(&stream.to_be_bytes());
                bytes.extend_from_slice(&length_word(*flags, data.len()));
                bytes.extend_from_slice(data);
                return Ok(bytes);
            }
            Frame::SynStream {
                stream,
                associated,
                priority,
                flags,
                headers,
            } => {
                let mut body = Vec::new();
                body.extend_from_slice(&stream.to_be_bytes());
                body.extend_from_slice(&associated.to_be_bytes());
                body.push(priority << 5);
                body.push(0);
                body.extend_from_slice(&self.deflate(&header_block(headers))?);
                (SYN_STREAM, *flags, body)
            }
            Frame::SynReply {
                stream,
                flags,
                headers,
            }
            | Frame::Headers {
                stream,
                flags,
                headers,
            } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend_from_slice(&self.deflate(&header_block(headers))?);
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                (kind, *flags, body)
            }
            Frame::RstStream { stream, status } => (RST_STREAM, 0, two_words(*stream, *status)),
            Frame::Settings { flags, entries } => {
                let mut body = (entries.len() as u32).to_be_bytes().to_vec();
                for (flag, id, value) in entries {
                    body.extend_from_slice(&((u32::from(*flag) << 24) | id).to_be_bytes());
                    body.extend_from_slice(&value.to_be_bytes());
                }
                (SETTINGS, *flags, body)
            }
            Frame::Ping { id } => (PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway { last_good, status } => (GOAWAY, 0, two_words(*last_good, *status)),
            Frame::WindowUpdate { stream, delta } => (WINDOW_UPDATE, 0, two_words(*stream, *delta)),
            Frame::Unknown { kind } => (*kind, 0, Vec::new()),
        };
        if body.len() > 0x00ff_ffff {
            return Err(error("control frame too large"));
        }
        let mut bytes = Vec::with_capacity(8 + body.len());
        bytes.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&length_word(flags, body.len()));
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Compresses one header block and sync-flushes it, so the peer can inflate it alone.
    fn deflate(&mut self, raw: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut consumed = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| error(format!("header block does not deflate: {e}")))?;
            consumed += (self.deflate.total_in() - before) as usize;
            // zlib: a flush is complete once output space is left over.
            if consumed == raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn length_word(flags: u8, length: usize) -> [u8; 4] {
    ((u32::from(flags) << 24) | (length as u32 & 0x00ff_ffff)).to_be_bytes()
}

fn two_words(first: u32, second: u32) -> Vec<u8> {
    let mut body = first.to_be_bytes().to_vec();
    body.extend_from_slice(&second.to_be_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn sorted(mut headers: Headers) -> Headers {
        headers.0.sort();
        headers
    }

    #[test]
    fn dictionary_is_spdy3s() {
        let dictionary = dictionary();
        assert_eq!(dictionary.len(), 1423);
        // Adler-32, the dictionary id a zlib stream primed with it carries.
        let (mut a, mut b) = (1u32, 0u32);
        for byte in dictionary {
            a = (a + u32::from(*byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn every_frame_round_trips_through_one_connection() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: headers(&[
                    ("streamtype", "error"),
                    ("port", "15000"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream: 3,
                associated: 1,
                priority: 7,
                flags: FLAG_FIN,
                headers: headers(&[
                    ("streamtype", "data"),
                    ("port", "15000"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynReply {
                stream: 1,
                flags: 0,
                headers: Headers::default(),
            },
            Frame::Headers {
                stream: 3,
                flags: 0,
                headers: headers(&[("x-multi", "a"), ("x-multi", "b")]),
            },
            Frame::Data {
                stream: 3,
                flags: 0,
                data: Bytes::from_static(b"GET /config_dump HTTP/1.1\r\n\r\n"),
            },
            Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream: 3,
                status: CANCEL,
            },
            Frame::Settings {
                flags: 1,
                entries: vec![(0, 4, 100), (1, 7, 65536)],
            },
            Frame::Ping { id: 1 },
            Frame::GoAway {
                last_good: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream: 3,
                delta: 65536,
            },
        ];
        let mut encoder = Encoder::new();
        let mut wire = BytesMut::new();
        for frame in &frames {
            wire.extend_from_slice(&encoder.encode(frame).unwrap());
        }
        let mut decoder = Decoder::new();
        let mut read = Vec::new();
        while let Some(frame) = decoder.decode(&mut wire).unwrap() {
            read.push(frame);
        }
        assert_eq!(read, frames);
        Decoder::finish(&wire).unwrap();
    }

    /// Two SYN_STREAMs as spdystream's framer wrote them (kubectl's error and data streams of
    /// one request): the first header block starts the zlib stream (header `78f9`, dictionary
    /// id `e3c6a7c2`), the second continues it.
    #[test]
    fn reads_syn_streams_written_by_the_go_framer() {
        let mut wire = BytesMut::from(
            &hex(concat!(
                "80030001000000400000000100000000000078f9e3c6a7c202253a060606ce2248fc6482d22da30138",
                "e59514a526e6420b17d65450d0430aea2250a266353435303000000000ffff",
                "800300010000001800000003000000000000225237a8684ac4d00c000000ffff",
            ))[..],
        );
        let mut decoder = Decoder::new();
        let first = decoder.decode(&mut wire).unwrap().unwrap();
        let second = decoder.decode(&mut wire).unwrap().unwrap();
        assert!(wire.is_empty());
        let Frame::SynStream {
            stream: 1,
            associated: 0,
            priority: 0,
            flags: 0,
            headers,
        } = first
        else {
            panic!("{first:?}")
        };
        assert_eq!(
            sorted(headers),
            sorted(self::headers(&[
                ("streamtype", "error"),
                ("port", "15000"),
                ("requestid", "0")
            ]))
        );
        let Frame::SynStream {
            stream: 3, headers, ..
        } = second
        else {
            panic!("{second:?}")
        };
        assert_eq!(headers.get("streamtype"), Some("data"));
        assert_eq!(headers.get("port"), Some("15000"));
    }

    #[test]
    fn a_frame_arriving_in_pieces_waits_and_a_cut_frame_is_an_error() {
        let mut encoder = Encoder::new();
        let bytes = encoder
            .encode(&Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: headers(&[("port", "15000")]),
            })
            .unwrap();
        for cut in 0..bytes.len() {
            let mut partial = BytesMut::from(&bytes[..cut]);
            assert_eq!(
                Decoder::new().decode(&mut partial),
                Ok(None),
                "cut at {cut}"
            );
            assert!(Decoder::finish(&partial).is_err() || cut == 0);
        }
    }

    #[test]
    fn frames_whose_length_is_too_short_for_their_fields_are_errors() {
        let control = |kind: u16, body: &[u8]| {
            let mut bytes = vec![0x80, 0x03];
            bytes.extend_from_slice(&kind.to_be_bytes());
            bytes.extend_from_slice(&length_word(0, body.len()));
            bytes.extend_from_slice(body);
            BytesMut::from(&bytes[..])
        };
        for (kind, body) in [
            (SYN_STREAM, &[0, 0, 0, 1, 0, 0][..]),
            (SYN_REPLY, &[0, 0][..]),
            (RST_STREAM, &[0, 0, 0, 1][..]),
            (SETTINGS, &[0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1][..]),
            (PING, &[0, 1][..]),
            (GOAWAY, &[0, 0, 0, 1][..]),
            (WINDOW_UPDATE, &[][..]),
        ] {
            let result = Decoder::new().decode(&mut control(kind, body));
            assert!(
                matches!(&result, Err(e) if e.0.contains("truncated")),
                "{kind}: {result:?}"
            );
        }
        // A header block that is not zlib, and one that claims more pairs than it holds.
        let mut garbage = control(SYN_REPLY, &[0, 0, 0, 1, 1, 2, 3, 4, 5]);
        assert!(Decoder::new().decode(&mut garbage).is_err());
        assert!(parse_header_block(&[0, 0, 0, 9, 0, 0, 0, 1, b'a']).is_err());
        assert!(parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a', 0, 0, 0, 0]).is_err());
        // Another version, and data on stream 0.
        let mut v2 = BytesMut::from(&[0x80, 0x02, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(Decoder::new().decode(&mut v2).is_err());
        let mut zero = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(Decoder::new().decode(&mut zero).is_err());
    }

    #[test]
    fn unknown_control_frames_are_skipped() {
        let mut wire = BytesMut::from(&[0x80, 0x03, 0, 10, 0, 0, 0, 2, 9, 9][..]);
        assert_eq!(
            Decoder::new().decode(&mut wire),
            Ok(Some(Frame::Unknown { kind: 10 }))
        );
        assert!(wire.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            // Mostly well-formed control headers, so the payload parsers are reached.
            if bytes.len() >= 8 && !seed.is_multiple_of(3) {
                bytes[0] = 0x80;
                bytes[1] = 3;
                bytes[2] = 0;
                bytes[3] = (seed % 11) as u8;
                let length = bytes.len() - 8;
                bytes[5..8].copy_from_slice(&length_word(0, length)[1..]);
            }
            let mut wire = BytesMut::from(&bytes[..]);
            let mut decoder = Decoder::new();
            while let Ok(Some(_)) = decoder.decode(&mut wire) {}
        }
    }
}
