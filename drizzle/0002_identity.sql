CREATE TABLE "credentials" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant" text,
	"kind" smallint NOT NULL,
	"name" text NOT NULL,
	"roles" smallint[] NOT NULL,
	"secret_hash" "bytea" NOT NULL,
	"salt" "bytea",
	"token_prefix" text DEFAULT '' NOT NULL,
	"user_id" text,
	"remember_me" boolean DEFAULT false NOT NULL,
	"created_at" timestamp(6) with time zone NOT NULL,
	"expires_at" timestamp(6) with time zone,
	"revoked_at" timestamp(6) with time zone,
	"last_used_at" timestamp(6) with time zone
);
--> statement-breakpoint
CREATE TABLE "tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"numeric_id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "tenants_numeric_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"display_name" text DEFAULT '' NOT NULL,
	"created_at" timestamp(6) with time zone NOT NULL,
	CONSTRAINT "tenants_numeric_id_unique" UNIQUE("numeric_id")
);
--> statement-breakpoint
ALTER TABLE "credentials" ADD CONSTRAINT "credentials_tenant_tenants_id_fk" FOREIGN KEY ("tenant") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "credentials_secret_hash_key" ON "credentials" USING btree ("secret_hash") WHERE "credentials"."kind" <> 2;--> statement-breakpoint
CREATE UNIQUE INDEX "credentials_tenant_user_key" ON "credentials" USING btree ("tenant","name") WHERE "credentials"."kind" = 2;--> statement-breakpoint
CREATE INDEX "credentials_tenant_idx" ON "credentials" USING btree ("tenant","kind");