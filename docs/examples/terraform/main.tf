variable "airlock_domain" {
  type        = string
  description = "The gateway domain: compute.DOMAIN is read as compute.googleapis.com."
}

variable "airlock_token_file" {
  type        = string
  description = "The token file airlock login keeps fresh."
}

provider "google" {
  project      = "acme-dev"
  access_token = trimspace(file(var.airlock_token_file))

  compute_custom_endpoint          = "https://compute.${var.airlock_domain}/compute/v1/"
  storage_custom_endpoint          = "https://storage.${var.airlock_domain}/storage/v1/"
  resource_manager_custom_endpoint = "https://cloudresourcemanager.${var.airlock_domain}/v1/"
  secret_manager_custom_endpoint   = "https://secretmanager.${var.airlock_domain}/v1/"
  container_custom_endpoint        = "https://container.${var.airlock_domain}/v1/"
  iam_custom_endpoint              = "https://iam.${var.airlock_domain}/v1/"
  cloud_run_v2_custom_endpoint     = "https://run.${var.airlock_domain}/v2/"
}

data "google_compute_instance" "web" {
  name = "web-1"
  zone = "us-east1-b"
}

output "web_status" {
  value = data.google_compute_instance.web.current_status
}
