CREATE TABLE "pull_slots" (
	"pull_id" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"released_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "containers" ADD COLUMN "price_per_period" bigint;--> statement-breakpoint
ALTER TABLE "dcu_tasks" ADD COLUMN "image_id" text;--> statement-breakpoint
ALTER TABLE "dcu_tasks" ADD COLUMN "charged" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "pull_slots" ADD CONSTRAINT "pull_slots_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "pull_slots_user_open_idx" ON "pull_slots" USING btree ("user_id") WHERE "pull_slots"."released_at" is null;--> statement-breakpoint
CREATE INDEX "dcu_tasks_image_id_completed_idx" ON "dcu_tasks" USING btree ("image_id") WHERE "dcu_tasks"."state" = 'completed';--> statement-breakpoint
ALTER TABLE "dcu_tasks" ADD CONSTRAINT "dcu_tasks_charged_non_negative" CHECK ("dcu_tasks"."charged" >= 0);