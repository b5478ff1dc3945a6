-- cairn-gateway schema, version 1: users, sessions, API tokens, namespaces,
-- documents and shares. Document bytes live in the cluster; a row only
-- points at them (cluster_path).

CREATE TABLE users (
  id            bigserial PRIMARY KEY,
  username      text NOT NULL UNIQUE
                CHECK (username ~ '^[A-Za-z0-9._-]{3,64}$'),
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per refresh token. A login starts a family (the session); each
-- refresh spends its token and adds the next one to the family. Presenting a
-- spent token again revokes the whole family.
CREATE TABLE sessions (
  id          text PRIMARY KEY,               -- session (family) id, a UUID
  user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  revoked     boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE refresh_tokens (
  token_hash  bytea PRIMARY KEY,              -- sha256 of the token
  session_id  text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  spent       boolean NOT NULL DEFAULT false,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

-- Scoped API tokens for machines; only their hash is stored.
CREATE TABLE api_tokens (
  id          bigserial PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  token_hash  bytea NOT NULL UNIQUE,
  scopes      text NOT NULL,                  -- space-separated: read write share
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE namespaces (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL UNIQUE
              CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  owner_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  public      boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX namespaces_owner ON namespaces(owner_id);

CREATE TABLE documents (
  id            uuid PRIMARY KEY,
  namespace_id  bigint NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
  owner_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 1024),
  content_type  text NOT NULL,
  size          bigint NOT NULL DEFAULT 0,
  sha256        text,
  upload_status text NOT NULL DEFAULT 'pending'
                CHECK (upload_status IN ('pending', 'completed', 'failed')),
  cluster_path  text NOT NULL,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- A name is taken by at most one completed document of a namespace.
CREATE UNIQUE INDEX documents_live_name ON documents(namespace_id, name)
  WHERE upload_status = 'completed';
CREATE INDEX documents_ns_name ON documents(namespace_id, name, id);
CREATE INDEX documents_owner ON documents(owner_id, created_at, id);

-- A share gives one user read or write access to a document or to a whole
-- namespace.
CREATE TABLE shares (
  id           bigserial PRIMARY KEY,
  document_id  uuid REFERENCES documents(id) ON DELETE CASCADE,
  namespace_id bigint REFERENCES namespaces(id) ON DELETE CASCADE,
  grantee_id   bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  permission   text NOT NULL CHECK (permission IN ('read', 'write')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  CHECK ((document_id IS NULL) <> (namespace_id IS NULL))
);
CREATE UNIQUE INDEX shares_doc ON shares(document_id, grantee_id) WHERE document_id IS NOT NULL;
CREATE UNIQUE INDEX shares_ns ON shares(namespace_id, grantee_id) WHERE namespace_id IS NOT NULL;
CREATE INDEX shares_grantee ON shares(grantee_id);
