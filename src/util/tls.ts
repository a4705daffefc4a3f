/**
 * Mutual TLS for every connection a process takes or makes: one CA bundle, certificate and key
 * (`--cacert --cert --key`), read and checked once at start-up, then handed out as gRPC server and
 * channel credentials and as HTTPS options for the status servers and their clients. Both ends
 * present a certificate signed by the CA and both verify the other's. Without a TlsConfig every
 * caller keeps the insecure path it always had.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ServerOptions as HttpsServerOptions } from "node:https";
import type { ConnectionOptions } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { TinyKvError } from "./errors.js";
import type { Runtime } from "./runtime.js";
import { realRuntime } from "./runtime.js";

/** A TLS file or PEM that cannot be used; the message names the file (or option) and what is wrong. */
export class TlsConfigError extends TinyKvError {}

/** PEM contents, as a library user passes them (e.g. from a secret store). */
export interface TlsPem {
  /** The CA certificate(s) that sign every peer's certificate. */
  caPem: string | Buffer;
  /** This side's certificate (optionally followed by intermediates). */
  certPem: string | Buffer;
  /** The certificate's private key, unencrypted. */
  keyPem: string | Buffer;
}

/** Paths of the three PEM files, as the binaries' flags name them. */
export interface TlsFiles {
  cacert: string;
  cert: string;
  key: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A checked CA, certificate and key. Build it once per process (fromFiles / fromPem) and share it. */
export class TlsConfig implements TlsPem {
  private channelCreds: grpc.ChannelCredentials | undefined;

  private constructor(
    readonly caPem: Buffer,
    readonly certPem: Buffer,
    readonly keyPem: Buffer,
    /** The certificate's subject, for start-up logs. */
    readonly subject: string,
  ) {}

  /**
   * Reads and checks the three files; a missing, unreadable or non-PEM file is a TlsConfigError
   * naming it. `clock` says what "now" is for the certificate's validity.
   */
  static fromFiles(files: TlsFiles, clock: Pick<Runtime, "now"> = realRuntime): TlsConfig {
    const read = (flag: string, path: string) => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new TlsConfigError(`${flag} ${path}: cannot read it: ${(err as Error).message}`, { cause: err });
      }
    };
    return TlsConfig.check(
      { caPem: read("--cacert", files.cacert), certPem: read("--cert", files.cert), keyPem: read("--key", files.key) },
      { ca: `--cacert ${files.cacert}`, cert: `--cert ${files.cert}`, key: `--key ${files.key}` },
      clock,
    );
  }

  /** Checks PEM contents; returns `pem` itself when it already is a TlsConfig. */
  static fromPem(pem: TlsPem, clock: Pick<Runtime, "now"> = realRuntime): TlsConfig {
    if (pem instanceof TlsConfig) return pem;
    return TlsConfig.check(pem, { ca: "tls.caPem", cert: "tls.certPem", key: "tls.keyPem" }, clock);
  }

  private static check(
    pem: TlsPem,
    names: { ca: string; cert: string; key: string },
    clock: Pick<Runtime, "now">,
  ): TlsConfig {
    const caPem = Buffer.from(pem.caPem);
    const certPem = Buffer.from(pem.certPem);
    const keyPem = Buffer.from(pem.keyPem);
    const cas = parseCertificates(caPem, names.ca);
    const chain = parseCertificates(certPem, names.cert);
    const leaf = chain[0]!;
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      throw new TlsConfigError(`${names.key}: not a PEM private key (${(err as Error).message})`, { cause: err });
    }
    if (!leaf.checkPrivateKey(key))
      throw new TlsConfigError(`${names.key} is not the private key of the certificate in ${names.cert}`);
    const now = clock.now();
    if (Date.parse(leaf.validTo) < now || Date.parse(leaf.validFrom) > now)
      throw new TlsConfigError(
        `${names.cert}: the certificate is valid from ${leaf.validFrom} to ${leaf.validTo}, not now`,
      );
    // Peers verify this certificate against the same CA bundle: a certificate from another CA
    // would only fail later, as a refused handshake on the other side.
    const issuers = [...chain.slice(1), ...cas];
    if (!issuers.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey)))
      throw new TlsConfigError(`${names.cert}: the certificate is not signed by the CA in ${names.ca}`);
    return new TlsConfig(caPem, certPem, keyPem, leaf.subject.replace(/\n/g, ", "));
  }

  /** gRPC server credentials that require a client certificate signed by the CA (mutual TLS). */
  serverCredentials(): grpc.ServerCredentials {
    return grpc.ServerCredentials.createSsl(this.caPem, [{ private_key: this.keyPem, cert_chain: this.certPem }], true);
  }

  /** gRPC channel credentials: verify the server against the CA and present this certificate. One per config. */
  channelCredentials(): grpc.ChannelCredentials {
    this.channelCreds ??= grpc.credentials.createSsl(this.caPem, this.keyPem, this.certPem);
    return this.channelCreds;
  }

  /** node:https server options that require and verify a client certificate. */
  httpsServerOptions(): HttpsServerOptions {
    return { ca: this.caPem, cert: this.certPem, key: this.keyPem, requestCert: true, rejectUnauthorized: true };
  }

  /** node:https / node:tls client options: verify the server, present this certificate. */
  clientOptions(): ConnectionOptions {
    return { ca: this.caPem, cert: this.certPem, key: this.keyPem, rejectUnauthorized: true };
  }
}

function parseCertificates(pem: Buffer, name: string): X509Certificate[] {
  const blocks = pem.toString("latin1").match(CERT_BLOCK) ?? [];
  if (blocks.length === 0)
    throw new TlsConfigError(`${name}: no PEM certificate in it (want -----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsConfigError(`${name}: certificate ${i + 1} is not valid PEM (${(err as Error).message})`, {
        cause: err,
      });
    }
  });
}

/**
 * The TlsConfig of a binary's `--cacert --cert --key` flags: all three (TLS) or none (undefined,
 * plaintext). Some but not all is a TlsConfigError that says which are missing.
 */
export function tlsFromFlags(values: Record<string, unknown>): TlsConfig | undefined {
  const flags = ["cacert", "cert", "key"] as const;
  const given = flags.filter((f) => typeof values[f] === "string" && values[f] !== "");
  if (given.length === 0) return undefined;
  if (given.length < flags.length) {
    const missing = flags.filter((f) => !given.includes(f)).map((f) => `--${f}`);
    throw new TlsConfigError(`TLS needs --cacert, --cert and --key together; missing ${missing.join(" and ")}`);
  }
  return TlsConfig.fromFiles({
    cacert: values.cacert as string,
    cert: values.cert as string,
    key: values.key as string,
  });
}

/** The usage lines of the TLS flags, their descriptions starting at `column` (as the binary's other flags). */
export function tlsFlagsUsage(column: number): string {
  const rows = [
    ["--cacert <file>", "CA certificate (PEM) that signs every peer's certificate; TLS needs all three"],
    ["--cert <file>", "this process's certificate (PEM), signed by --cacert"],
    ["--key <file>", "the certificate's private key (PEM, unencrypted)"],
  ];
  return rows.map(([flag, text]) => `  ${flag!.padEnd(column - 2)}${text}\n`).join("");
}

/** The parseArgs options of the TLS flags. */
export const TLS_FLAG_OPTIONS = {
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
} as const;

/** Server credentials: mutual TLS when configured, else insecure (as before TLS existed). */
export function grpcServerCredentials(tls: TlsConfig | undefined): grpc.ServerCredentials {
  return tls ? tls.serverCredentials() : grpc.ServerCredentials.createInsecure();
}

/** Channel credentials: mutual TLS when configured, else insecure (as before TLS existed). */
export function grpcChannelCredentials(tls: TlsConfig | undefined): grpc.ChannelCredentials {
  return tls ? tls.channelCredentials() : grpc.credentials.createInsecure();
}

/** "https" with TLS, "http" without: for URLs that are printed or handed out. */
export function urlScheme(tls: TlsConfig | undefined): "https" | "http" {
  return tls ? "https" : "http";
}
