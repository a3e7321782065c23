-- An API key's role: 'admin' keys manage keys and account settings, 'member' keys use everything else.
ALTER TABLE "api_keys" ADD COLUMN "role" TEXT NOT NULL DEFAULT 'admin';
