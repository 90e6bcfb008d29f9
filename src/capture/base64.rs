//! Base64 (RFC 4648, standard alphabet, `=` padding) for binary frames in the line format.
//!
//! Small and written here rather than a crate: the recorder needs only "append the encoding of
//! these bytes to a buffer it reuses" and the replay "decode into a buffer it reuses", both without
//! allocating once the buffers have grown, and a decoder that refuses anything not canonical
//! (bad characters, bad padding, non-zero trailing bits) so a damaged line is a counted skip.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes `encode_into` appends for `n` input bytes.
pub fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the base64 of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(data.len()));
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let v = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend_from_slice(&[
            ALPHABET[(v >> 18) as usize & 63],
            ALPHABET[(v >> 12) as usize & 63],
            ALPHABET[(v >> 6) as usize & 63],
            ALPHABET[v as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            out.extend_from_slice(&[ALPHABET[(v >> 18) as usize & 63], ALPHABET[(v >> 12) as usize & 63], b'=', b'=']);
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[
                ALPHABET[(v >> 18) as usize & 63],
                ALPHABET[(v >> 12) as usize & 63],
                ALPHABET[(v >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// Why a base64 text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base64Error;

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not canonical base64")
    }
}

impl std::error::Error for Base64Error {}

fn value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Decodes canonical padded base64 `text` into `out` (cleared first). On an error `out` holds an
/// unspecified prefix.
pub fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
    out.clear();
    if text.len() % 4 != 0 {
        return Err(Base64Error);
    }
    out.reserve(text.len() / 4 * 3);
    let n = text.len() / 4;
    for (i, q) in text.chunks_exact(4).enumerate() {
        let last = i + 1 == n;
        let pad = match (q[2], q[3]) {
            (b'=', b'=') if last => 2,
            (_, b'=') if last => 1,
            _ => 0,
        };
        let mut v = 0u32;
        for (j, &c) in q[..4 - pad].iter().enumerate() {
            v |= value(c).ok_or(Base64Error)? << (18 - 6 * j);
        }
        match pad {
            0 => out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]),
            // The bits below the last byte must be zero (canonical).
            1 if v & 0xff == 0 => out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8]),
            2 if v & 0xffff == 0 => out.push((v >> 16) as u8),
            _ => return Err(Base64Error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(d: &[u8]) -> String {
        let mut v = Vec::new();
        encode_into(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn rfc4648_vectors() {
        for (plain, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(enc(plain.as_bytes()), b64);
            let mut out = Vec::new();
            decode_into(b64.as_bytes(), &mut out).unwrap();
            assert_eq!(out, plain.as_bytes());
        }
        assert_eq!(enc(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn refuses_what_is_not_canonical() {
        let mut out = Vec::new();
        for bad in ["Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zg==Zg==", "Zm 9", "Zm9v\n", "=Zm9", "Zm-v", "é"] {
            assert_eq!(decode_into(bad.as_bytes(), &mut out), Err(Base64Error), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut text = Vec::new();
            encode_into(&data, &mut text);
            proptest::prop_assert_eq!(text.len(), encoded_len(data.len()));
            let mut back = Vec::new();
            decode_into(&text, &mut back).unwrap();
            proptest::prop_assert_eq!(back, data);
        }

        #[test]
        fn any_text_decodes_or_errs(text in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut out = Vec::new();
            if decode_into(&text, &mut out).is_ok() {
                let mut again = Vec::new();
                encode_into(&out, &mut again);
                proptest::prop_assert_eq!(again, text, "only canonical text decodes");
            }
        }
    }
}
