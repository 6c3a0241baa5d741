ALTER TABLE "containers" ADD COLUMN "env" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "containers" ADD COLUMN "cmd" jsonb;--> statement-breakpoint
ALTER TABLE "containers" ADD COLUMN "exit_code" integer;--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "stream_url" text;--> statement-breakpoint
CREATE UNIQUE INDEX "containers_user_name_live_key" ON "containers" USING btree ("user_id","name") WHERE "containers"."removed_at" is null;