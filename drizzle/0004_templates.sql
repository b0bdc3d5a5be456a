CREATE TABLE "event_templates" (
	"tenant" text NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"attributes" jsonb NOT NULL,
	"default_ttl_minutes" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp(6) with time zone NOT NULL,
	CONSTRAINT "event_templates_pkey" PRIMARY KEY("tenant","name")
);
--> statement-breakpoint
ALTER TABLE "event_templates" ADD CONSTRAINT "event_templates_tenant_tenants_id_fk" FOREIGN KEY ("tenant") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;