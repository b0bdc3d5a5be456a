CREATE TABLE "events" (
	"tenant" text NOT NULL,
	"sequence" bigint NOT NULL,
	"id" text NOT NULL,
	"occurred_at" timestamp(6) with time zone NOT NULL,
	"received_at" timestamp(6) with time zone NOT NULL,
	"completed_at" timestamp(6) with time zone,
	"expires_at" timestamp(6) with time zone,
	"source" text DEFAULT '' NOT NULL,
	"action" text NOT NULL,
	"category" text DEFAULT '' NOT NULL,
	"actor_id" text DEFAULT '' NOT NULL,
	"actor_type" text DEFAULT '' NOT NULL,
	"actor_name" text DEFAULT '' NOT NULL,
	"actor_email" text DEFAULT '' NOT NULL,
	"actor_roles" text[] DEFAULT '{}'::text[] NOT NULL,
	"target_id" text DEFAULT '' NOT NULL,
	"target_type" text DEFAULT '' NOT NULL,
	"target_name" text DEFAULT '' NOT NULL,
	"outcome_status" smallint DEFAULT 0 NOT NULL,
	"outcome_code" text DEFAULT '' NOT NULL,
	"outcome_message" text DEFAULT '' NOT NULL,
	"request" jsonb,
	"attributes" jsonb,
	"parent_id" text DEFAULT '' NOT NULL,
	"content_hash" "bytea" NOT NULL,
	CONSTRAINT "events_pkey" PRIMARY KEY("tenant","sequence")
);
--> statement-breakpoint
CREATE TABLE "server_secrets" (
	"name" text PRIMARY KEY NOT NULL,
	"value" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tenant_sequences" (
	"tenant" text PRIMARY KEY NOT NULL,
	"last_sequence" bigint NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "events_tenant_id_key" ON "events" USING btree ("tenant","id");--> statement-breakpoint
CREATE INDEX "events_tenant_time_idx" ON "events" USING btree ("tenant","occurred_at","sequence");--> statement-breakpoint
CREATE INDEX "events_tenant_actor_time_idx" ON "events" USING btree ("tenant","actor_id","occurred_at","sequence");--> statement-breakpoint
CREATE INDEX "events_tenant_action_idx" ON "events" USING btree ("tenant","action" text_pattern_ops,"occurred_at");--> statement-breakpoint
CREATE INDEX "events_tenant_target_idx" ON "events" USING btree ("tenant","target_id","target_type","occurred_at");--> statement-breakpoint
CREATE INDEX "events_tenant_parent_idx" ON "events" USING btree ("tenant","parent_id","occurred_at","sequence") WHERE "events"."parent_id" <> '';