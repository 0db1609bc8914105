/**
 * A Docker registry (distribution API v2), asked what the engines do not tell: whether it answers, and
 * which manifest a tag names, so an image pushed once is never pushed again. TLS as the docker engine
 * does it: the CAs in `/etc/docker/certs.d/<address>/*.crt` beside the well-known public ones.
 */
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { DependencyError } from '../core/errors.ts';

export interface RegistryClientOptions {
  /** Where the engine's per-registry certificates live; default `/etc/docker/certs.d`. */
  certsDir?: string;
  /** Plain HTTP, for a registry the engines list under `insecure-registries`. */
  insecure?: boolean;
  /** How long one request may take; default 10000 ms. */
  timeoutMs?: number;
}

/** The manifest types an engine pushes (docker schema 2, OCI) and their multi-platform lists. */
const manifestTypes = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One registry by address (`10.240.77.1:5000`, `registry.example:443`). */
export class RegistryClient {
  readonly address: string;
  private readonly certsDir: string;
  private readonly insecure: boolean;
  private readonly timeoutMs: number;
  private trust: Promise<string[] | undefined> | undefined;

  constructor(address: string, options: RegistryClientOptions = {}) {
    this.address = address;
    this.certsDir = options.certsDir ?? '/etc/docker/certs.d';
    this.insecure = options.insecure ?? false;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Resolves when the registry answers the API (401, a registry that wants credentials, counts). */
  async ping(): Promise<void> {
    const answer = await this.request('GET', '/v2/', {});
    if (answer.status !== 200 && answer.status !== 401) {
      throw new DependencyError(
        `registry ${this.address} answered GET /v2/ with HTTP ${answer.status}${excerpt(answer.body)}; ` +
          'it does not look like a Docker registry (API v2)',
      );
    }
  }

  /**
   * The digest of the manifest `repo:tag` names (what a push of it reported), or `undefined` when the
   * registry has no such tag. `repo` is the path in this registry (`tg/placebo`); a leading address of
   * this registry (`10.240.77.1:5000/tg/placebo`, as in an image reference) is taken off.
   */
  async manifestDigest(repo: string, tag: string): Promise<string | undefined> {
    const name = repo.startsWith(`${this.address}/`) ? repo.slice(this.address.length + 1) : repo;
    const answer = await this.request('HEAD', `/v2/${name}/manifests/${encodeURIComponent(tag)}`, {
      Accept: manifestTypes,
    });
    if (answer.status === 404) return undefined;
    const digest = answer.headers['docker-content-digest'];
    if (answer.status !== 200 || typeof digest !== 'string') {
      throw new DependencyError(
        `registry ${this.address} answered HEAD of manifest ${repo}:${tag} with HTTP ${answer.status}` +
          (answer.status === 200 ? ' but no Docker-Content-Digest header' : ''),
      );
    }
    return digest;
  }

  private async request(
    method: string,
    pathname: string,
    headers: http.OutgoingHttpHeaders,
  ): Promise<Answer> {
    const url = `${this.insecure ? 'http' : 'https'}://${this.address}${pathname}`;
    const ca = this.insecure ? undefined : await this.trustedCertificates();
    return new Promise((resolve, reject) => {
      const fail = (reason: string): void =>
        reject(new DependencyError(`registry ${this.address} is unreachable (${method} ${url}): ${reason}`));
      const request = (this.insecure ? http : https).request(
        url,
        { method, headers, timeout: this.timeoutMs, ...(ca ? { ca } : {}) },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            // Only the start of an error page ends up in a message.
            if (body.length < 4_096) body += chunk;
          });
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
          );
          response.on('error', (error) => fail(error.message));
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      request.on('error', (error: Error & { code?: string }) => {
        const certificate = /certificate|self.signed|CERT_/i.test(`${error.code ?? ''} ${error.message}`);
        fail(
          `${error.code ? `${error.code}: ` : ''}${error.message}` +
            (certificate
              ? `; put the CA that signed its certificate in ${path.join(this.certsDir, this.address, 'ca.crt')}`
              : ''),
        );
      });
      request.end();
    });
  }

  /** Node's well-known CAs and the registry's own, or `undefined` (the well-known alone) when it has none. */
  private trustedCertificates(): Promise<string[] | undefined> {
    this.trust ??= (async () => {
      const dir = path.join(this.certsDir, this.address);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        return undefined;
      }
      // As the engine: every `*.crt` there is a CA, added to (not replacing) the system's.
      const own = await Promise.all(
        names
          .filter((name) => name.endsWith('.crt'))
          .sort()
          .map((name) => readFile(path.join(dir, name), 'utf8')),
      );
      return own.length > 0 ? [...rootCertificates, ...own] : undefined;
    })();
    return this.trust;
  }
}

function excerpt(body: string): string {
  const text = body.trim().replace(/\s+/g, ' ');
  return text ? ` (${text.slice(0, 200)})` : '';
}
