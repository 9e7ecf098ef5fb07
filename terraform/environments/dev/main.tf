# A development environment: terraform/ used as a module.
#   cp terraform.tfvars.example terraform.tfvars   # and edit
#   terraform init && terraform apply
terraform {
  required_version = ">= 1.6"

  # keep the state in a bucket made beforehand (not by this configuration)
  # backend "gcs" {
  #   bucket = "my-terraform-state"
  #   prefix = "beatsync/dev"
  # }

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 7.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.10, < 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

variable "project_id" {
  description = "Google Cloud project of the dev environment."
  type        = string
}

variable "region" {
  description = "Region of the dev environment."
  type        = string
  default     = "asia-southeast1"
}

variable "bucket_name" {
  description = "Media bucket name (globally unique)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the analyze and compose images to deploy."
  type        = string
}

variable "domain" {
  description = "Domain of the dev API (its A record points to api_ip_address)."
  type        = string
}

variable "id_token_callers" {
  description = "Service account emails whose Google ID tokens may call the API."
  type        = list(string)
  default     = []
}

module "beatsync" {
  source = "../.."

  project_id          = var.project_id
  region              = var.region
  name_prefix         = "beat-sync-dev"
  bucket_name         = var.bucket_name
  image_tag           = var.image_tag
  domain              = var.domain
  id_token_callers    = var.id_token_callers
  deletion_protection = false
  labels              = { env = "dev" }
}

output "api_url" {
  description = "The one base URL of the API (BEAT_SYNC_SERVICE_URL)."
  value       = module.beatsync.api_url
}

output "api_ip_address" {
  description = "Point the domain's A record here."
  value       = module.beatsync.api_ip_address
}

output "image_repository" {
  description = "Push images here."
  value       = module.beatsync.image_repository
}
