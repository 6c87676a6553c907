//! Published examples, typed from the RFCs, verified with the clock at their time.

use super::*;

/// RFC 7515 A.2/A.3 payload: `{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}`.
const A2_A3_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const A2_A3_EXP: u64 = 1_300_819_380;

const A2_SIGNATURE: &str = concat!(
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7",
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4",
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K",
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv",
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB",
    "p0igcN_IoypGlUPQGe77Rw"
);
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

const A3_SIGNATURE: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

fn rfc_verify(token: &str, jwks: &Jwks, now: u64) -> Result<VerifiedClaims, JoseError> {
    verify(&parse(token)?, jwks, &Validation::new("joe"), now)
}

#[test]
fn rfc7515_a2_rs256() {
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{A2_A3_PAYLOAD}.{A2_SIGNATURE}");
    let keys = jwks(json!({"keys": [{"kty": "RSA", "n": A2_N, "e": "AQAB"}]}));
    let claims = rfc_verify(&token, &keys, A2_A3_EXP - 100).unwrap();
    assert_eq!(claims.issuer(), "joe");
    assert_eq!(
        claims.claim(&["http://example.com/is_root"]),
        Some(&json!(true))
    );
    assert_eq!(claims.expires_at(), Some(A2_A3_EXP));
    assert_eq!(claims.alg(), Algorithm::Rs256);
    assert_eq!(claims.payload_b64(), A2_A3_PAYLOAD);
    assert_eq!(
        rfc_verify(&token, &keys, A2_A3_EXP + 60).unwrap_err(),
        JoseError::Expired
    );
}

#[test]
fn rfc7515_a3_es256() {
    let token = format!("eyJhbGciOiJFUzI1NiJ9.{A2_A3_PAYLOAD}.{A3_SIGNATURE}");
    let keys = jwks(json!({"keys": [{
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    }]}));
    let claims = rfc_verify(&token, &keys, A2_A3_EXP - 100).unwrap();
    assert_eq!(claims.issuer(), "joe");
    assert_eq!(claims.alg(), Algorithm::Es256);
    // Our fixed P-256 test key is this RFC key.
    assert_eq!(keys.keys()[0].kind(), KeyKind::P256);
    let ours = jwks(json!({"keys": [p256_jwk("k")]}));
    assert!(rfc_verify(&token, &ours, A2_A3_EXP - 100).is_ok());
}

/// RFC 8037 A.4/A.5. Its payload is the text "Example of Ed25519 signing", not a claims set, so
/// the full token is (rightly) not a JWT for us; the signature is checked with the RFC key.
#[test]
fn rfc8037_a4_ed25519() {
    let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let sig =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    let keys = jwks(json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}));
    let key = &keys.keys()[0];
    let sig = b64::decode(sig).unwrap();
    assert!(key.verify(Algorithm::EdDsa, input.as_bytes(), &sig));
    assert!(!key.verify(Algorithm::EdDsa, b"eyJhbGciOiJFZERTQSJ9.e30", &sig));
    // Our signer with the RFC's private key reproduces the RFC signature (Ed25519 is
    // deterministic), which ties the minted EdDSA tokens below to the RFC.
    assert_eq!(sign(Algorithm::EdDsa, input.as_bytes()), sig);
    assert_eq!(
        parse(&format!("{input}.{}", b64::encode(&sig))).unwrap_err(),
        JoseError::Malformed(Malformed::Json(Segment::Payload))
    );
}
