CREATE TABLE "log_checkpoints" (
	"tenant" text NOT NULL,
	"size" bigint NOT NULL,
	"note" text NOT NULL,
	"signed_at" timestamp(6) with time zone NOT NULL,
	CONSTRAINT "log_checkpoints_pkey" PRIMARY KEY("tenant","size")
);
--> statement-breakpoint
CREATE TABLE "log_heads" (
	"tenant" text PRIMARY KEY NOT NULL,
	"size" bigint NOT NULL,
	"edge" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "log_tiles" (
	"tenant" text NOT NULL,
	"level" smallint NOT NULL,
	"index" bigint NOT NULL,
	"hashes" "bytea" NOT NULL,
	CONSTRAINT "log_tiles_pkey" PRIMARY KEY("tenant","level","index")
);
--> statement-breakpoint
-- The verifiable log's one write per append transaction (src/vlog/tree-log.ts): moves each tenant's head from
-- old_sizes[i] to new_sizes[i] with its new edge, and stores the tiles that filled. It refuses (XX001) when a head is
-- not at the size the writer computed from: the tree and the events disagree, so nothing of the transaction commits.
CREATE FUNCTION audit_log_advance(
  tenants text[], old_sizes bigint[], new_sizes bigint[], edges bytea[],
  tile_tenants text[], tile_levels smallint[], tile_indexes bigint[], tile_hashes bytea[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  moved int;
BEGIN
  FOR i IN 1 .. coalesce(array_length(tenants, 1), 0) LOOP
    IF old_sizes[i] = 0 THEN
      INSERT INTO log_heads (tenant, size, edge) VALUES (tenants[i], new_sizes[i], edges[i])
        ON CONFLICT (tenant) DO NOTHING;
    ELSE
      UPDATE log_heads SET size = new_sizes[i], edge = edges[i] WHERE tenant = tenants[i] AND size = old_sizes[i];
    END IF;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved <> 1 THEN
      RAISE EXCEPTION 'the verifiable log of tenant % is not at size %', tenants[i], old_sizes[i]
        USING ERRCODE = 'data_corrupted';
    END IF;
  END LOOP;
  INSERT INTO log_tiles (tenant, level, index, hashes)
    SELECT * FROM unnest(tile_tenants, tile_levels, tile_indexes, tile_hashes);
END;
$$;
