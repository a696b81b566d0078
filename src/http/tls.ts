/**
 * HTTPS for the server: a PEM certificate (chain) and its private key, checked before the
 * server is built, so a wrong file is named in a clear error instead of OpenSSL's codes
 * ("error:05800074:x509 certificate routines::key values mismatch").
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { ConfigError } from "../errors.js";

/** The certificate and private key, PEM text or bytes. */
export interface TlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

/** What to call the certificate and the key in errors: config keys, file names. */
export interface TlsLabels {
  cert: { key: string; name: string };
  key: { key: string; name: string };
}

const DEFAULT_LABELS: TlsLabels = {
  cert: { key: "tls.cert", name: "the certificate" },
  key: { key: "tls.key", name: "the private key" },
};

/**
 * Throw a ConfigError naming the file when the certificate or key cannot be parsed, the
 * key is encrypted, or the key does not belong to the certificate. Returns the
 * certificate (its subject and validity, for warnings).
 */
export function checkTlsPair(tls: TlsOptions, labels: TlsLabels = DEFAULT_LABELS): X509Certificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(tls.cert);
  } catch (error) {
    throw new ConfigError(
      labels.cert.key,
      `${labels.cert.name} is not a PEM certificate (${reason(error)}); it should start with '-----BEGIN CERTIFICATE-----'`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(tls.key);
  } catch (error) {
    // OpenSSL asks for a passphrase nobody can type and reports "interrupted or cancelled".
    const encrypted =
      /-----BEGIN (ENCRYPTED PRIVATE KEY|RSA PRIVATE KEY-----\s*Proc-Type: 4,ENCRYPTED)/.test(
        String(tls.key),
      );
    throw new ConfigError(
      labels.key.key,
      encrypted
        ? `${labels.key.name} is encrypted with a passphrase; give it unencrypted (openssl pkey -in key.pem -out plain.pem)`
        : `${labels.key.name} is not a PEM private key (${reason(error)}); it should start with '-----BEGIN PRIVATE KEY-----'`,
    );
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new ConfigError(
      labels.key.key,
      `${labels.key.name} does not belong to ${labels.cert.name} (${certificate.subject.replace(/\n/g, ", ")}): give the key the certificate was made with`,
    );
  }
  return certificate;
}

/** Reasons a client will refuse the certificate for `host`, for a warning at start. */
export function certificateWarnings(certificate: X509Certificate, host: string): string[] {
  const warnings: string[] = [];
  if (Date.parse(certificate.validTo) < Date.now()) {
    warnings.push(`the TLS certificate expired on ${certificate.validTo}`);
  }
  const named = /^[\d.]+$|:/.test(host)
    ? certificate.checkIP(host) !== undefined
    : certificate.checkHost(host) !== undefined;
  const wildcard = host === "0.0.0.0" || host === "::";
  if (!wildcard && !named) {
    warnings.push(
      `the TLS certificate does not name ${host} (subject: ${certificate.subject.replace(/\n/g, ", ")}; ${certificate.subjectAltName ?? "no subjectAltName"}): clients reaching it there will refuse it`,
    );
  }
  return warnings;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message.replace(/^error:[0-9A-F]+:/, "") : String(error);
}
