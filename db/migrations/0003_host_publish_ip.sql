ALTER TABLE "containers" ADD COLUMN "host_ip" text DEFAULT '127.0.0.1' NOT NULL;--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "publish_ip" text DEFAULT '127.0.0.1' NOT NULL;