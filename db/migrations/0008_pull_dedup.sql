ALTER TABLE "images" ADD COLUMN "removal_started_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "pull_slots" ADD COLUMN "deduped_image" jsonb;