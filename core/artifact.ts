/** What a builder produced and a runner starts from: a bundle on the host, or an image in the engine. */
export type Artifact =
  { kind: 'bundle'; path: string; cached: boolean } | { kind: 'image'; imageId: string; cached: boolean };

/** `bundle` (a file on the host) or `image` (in the engine): what a builder makes and a runner starts. */
export type ArtifactKind = Artifact['kind'];
